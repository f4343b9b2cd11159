"""Shared pieces of the benchmarks: the ping payloads, the crypto floor, and timing helpers.

The *floor* of one request is what the enclave cannot avoid doing per encrypted request,
counted in raw primitive calls (spec §2), nothing else:

* three X25519 operations: ``crypto_scalarmult`` (open: static secret x client key),
  ``crypto_scalarmult`` (seal: fresh secret x client key), ``crypto_scalarmult_base`` (the
  fresh public key), all through ``nacl.bindings`` (libsodium);
* two HKDF-SHA256 derivations, computed exactly as the reference computes them
  (``HKDF(hashes.SHA256(), 32, None, b"encryption").derive(shared)``);
* two XChaCha20-Poly1305-IETF operations: decrypt the request, encrypt the reply, at the
  same sizes as the real ping request and reply.

How the noise is handled (the machines are small and shared): batches are timed by default
with this thread's CPU clock (``time.thread_time``, CLOCK_THREAD_CPUTIME_ID, ns resolution), so
time spent descheduled while other processes use the core is not counted (``use_clock("wall")``
switches to ``time.perf_counter``); every quantity is timed in ``trials`` short batches, the
batches of the things compared taking turns (so a slow phase of the machine hits all of them),
with garbage collection off while timing. Each benchmark says which statistic it judges
(paired median ratio, best-of-N, median) and prints the others beside it.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import nacl.bindings as sodium
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Run from a checkout: its packages are top-level there (README, "Packaging"); the servers the
# benchmarks start as child processes find them through PYTHONPATH.
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

_CHECKOUT = str(Path(__file__).resolve().parent.parent)
sys.path.insert(0, _CHECKOUT)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_CHECKOUT, os.environ.get("PYTHONPATH")) if p)

from harness.protocol import envelope as client_envelope  # noqa: E402

HKDF_INFO = b"encryption"
PING_REQUEST_BYTES = 100  # the request plaintext size the targets are stated for


def ping_plaintext(size: int = PING_REQUEST_BYTES, tag: str = "") -> bytes:
    """A ``ping`` request plaintext of exactly ``size`` bytes (the message pads it)."""
    head = {"operation": "ping", "options": {"message": ""}}
    empty = len(json.dumps(head, separators=(",", ":")))
    message = (tag + "x" * size)[: max(0, size - empty)]
    plaintext = json.dumps({"operation": "ping", "options": {"message": message}}, separators=(",", ":"))
    return plaintext.encode()


def ping_reply(request_plaintext: bytes) -> bytes:
    """The reply plaintext the reference's ``ping`` produces for that request (same shape, same size)."""
    message = json.loads(request_plaintext)["options"]["message"]
    result = {"success": True, "data": {"timestamp": 1_764_288_000_000, "pong": message}, "error": None}
    return json.dumps(result, separators=(",", ":")).encode()


def seal_request(enclave_public: bytes, plaintext: bytes) -> tuple[bytes, bytes]:
    """Seal a request with the harness's (independent) client envelope; returns (secret, body)."""
    secret = os.urandom(client_envelope.KEY_BYTES)
    sealed = client_envelope.seal(
        enclave_public, plaintext, ephemeral_secret=secret, nonce=os.urandom(client_envelope.NONCE_BYTES)
    )
    return secret, sealed.to_bytes()


def open_reply(client_secret: bytes, body: bytes) -> bytes:
    reply = client_envelope.Envelope.from_json(json.loads(body))
    return client_envelope.open_envelope(reply, client_secret)


def _hkdf(shared: bytes) -> bytes:
    # Exactly the reference's derivation (reference/enclave/envelope.py), object construction included.
    return HKDF(hashes.SHA256(), 32, None, HKDF_INFO).derive(shared)


@dataclass
class CryptoFloor:
    """The seven primitive calls of one request/reply, on realistic inputs."""

    static_secret: bytes
    client_public: bytes
    nonce_in: bytes
    ciphertext_in: bytes
    reply: bytes
    reply_secret: bytes

    @classmethod
    def for_ping(cls, size: int = PING_REQUEST_BYTES) -> "CryptoFloor":
        plaintext = ping_plaintext(size)
        return cls.for_messages(plaintext, ping_reply(plaintext))

    @classmethod
    def for_messages(cls, request_plaintext: bytes, reply_plaintext: bytes) -> "CryptoFloor":
        """The primitives of any request/reply pair: the AEAD costs depend on both sizes."""
        static_secret = os.urandom(32)
        _, body = seal_request(sodium.crypto_scalarmult_base(static_secret), request_plaintext)
        obj = json.loads(body)
        return cls(
            static_secret,
            bytes.fromhex(obj["ephemeralPublicKey"]),
            bytes.fromhex(obj["nonce"]),
            bytes.fromhex(obj["ciphertext"]),
            reply_plaintext,
            os.urandom(32),
        )

    def once(self) -> None:
        """All seven primitives in request order, with no glue but passing the results on."""
        key = _hkdf(sodium.crypto_scalarmult(self.static_secret, self.client_public))
        sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(self.ciphertext_in, None, self.nonce_in, key)
        # The reply's "fresh" secret and nonce are fixed here: drawing them (os.urandom) is glue
        # the envelope code pays for, not one of the listed primitives.
        key = _hkdf(sodium.crypto_scalarmult(self.reply_secret, self.client_public))
        sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(self.reply, None, self.nonce_in, key)
        sodium.crypto_scalarmult_base(self.reply_secret)

    def isolated(self) -> dict[str, tuple[Callable[[], object], int]]:
        """Each primitive alone, with its multiplicity in one request (informational)."""
        shared = sodium.crypto_scalarmult(self.static_secret, self.client_public)
        key = _hkdf(shared)
        return {
            "X25519 crypto_scalarmult": (lambda: sodium.crypto_scalarmult(self.static_secret, self.client_public), 2),
            "X25519 crypto_scalarmult_base": (lambda: sodium.crypto_scalarmult_base(self.static_secret), 1),
            "HKDF-SHA256": (lambda: _hkdf(shared), 2),
            "XChaCha20-Poly1305 decrypt": (
                lambda: sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(self.ciphertext_in, None, self.nonce_in, key),
                1,
            ),
            "XChaCha20-Poly1305 encrypt": (
                lambda: sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(self.reply, None, self.nonce_in, key),
                1,
            ),
        }


CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]


def use_clock(name: str) -> None:
    global clock
    clock = CLOCKS[name]


def calibrate(fn: Callable[[], object], batch_seconds: float) -> int:
    """How many calls make one batch of about ``batch_seconds``."""
    number = 1
    while True:
        started = clock()
        for _ in range(number):
            fn()
        elapsed = clock() - started
        if elapsed >= batch_seconds / 4:
            return max(1, int(number * batch_seconds / elapsed))
        number *= 2


def time_batch(fn: Callable[[], object], number: int) -> float:
    """Seconds per call over one batch of ``number`` calls."""
    started = clock()
    for _ in range(number):
        fn()
    return (clock() - started) / number


def interleaved(fns: dict[str, Callable[[], object]], trials: int, batch_seconds: float) -> dict[str, list[float]]:
    """Per-call times of each function over ``trials`` batches, the functions taking turns
    (the order rotates every trial so none is always first after a pause)."""
    names = list(fns)
    numbers = {name: calibrate(fns[name], batch_seconds) for name in names}
    samples: dict[str, list[float]] = {name: [] for name in names}
    enabled = gc.isenabled()
    gc.disable()
    try:
        for trial in range(trials):
            shift = trial % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(time_batch(fns[name], numbers[name]))
    finally:
        if enabled:
            gc.enable()
    return samples


def best(samples: list[float]) -> float:
    return min(samples)


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def us(seconds: float) -> str:
    return f"{seconds * 1e6:8.1f} us"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"
