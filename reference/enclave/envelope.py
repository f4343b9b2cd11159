"""The E2E envelope, enclave side (spec §3). Sans-IO: bytes and keys in, bytes out.

Request: the client seals with a fresh X25519 secret against the enclave's static key.
Response: the enclave seals with a *fresh* X25519 secret against the client's ephemeral key.
Both directions use the same construction, so one ``seal``/``open_envelope`` pair serves both:

    shared = X25519(secret, peer_public)            # all-zero result rejected (low order)
    key    = HKDF-SHA256(ikm=shared, salt=absent, info=b"encryption", L=32)
    body   = XChaCha20-Poly1305-IETF(key, nonce[24], aad=b"")(plaintext)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

import nacl.bindings as sodium
import nacl.exceptions
import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import EnvelopeCode, EnvelopeError

KEY_BYTES = 32
NONCE_BYTES = 24
TAG_BYTES = 16
HKDF_INFO = b"encryption"
MAX_BODY_BYTES = 1 << 20  # spec §3.5: larger bodies are refused with 413 before parsing



@dataclass(frozen=True, slots=True)
class Envelope:
    ephemeral_public_key: bytes
    nonce: bytes
    ciphertext: bytes

    @classmethod
    def from_json(cls, obj: object) -> "Envelope":
        """Validate a decoded JSON value as an envelope (spec §3.1, §3.5); the first problem raises."""
        if not isinstance(obj, dict):
            raise EnvelopeError(EnvelopeCode.INVALID_JSON, "request body must be a JSON object")
        key = _field(obj, "ephemeralPublicKey")
        nonce = _field(obj, "nonce")
        ciphertext = _field(obj, "ciphertext")
        if len(key) != KEY_BYTES:
            raise EnvelopeError(EnvelopeCode.INVALID_LENGTH, f"field 'ephemeralPublicKey' must be {KEY_BYTES} bytes, got {len(key)}")
        if len(nonce) != NONCE_BYTES:
            raise EnvelopeError(EnvelopeCode.INVALID_LENGTH, f"field 'nonce' must be {NONCE_BYTES} bytes, got {len(nonce)}")
        if len(ciphertext) < TAG_BYTES:
            raise EnvelopeError(EnvelopeCode.INVALID_LENGTH, f"field 'ciphertext' must be at least {TAG_BYTES} bytes")
        return cls(key, nonce, ciphertext)

    def to_json(self) -> dict:
        return {
            "ephemeralPublicKey": self.ephemeral_public_key.hex(),
            "nonce": self.nonce.hex(),
            "ciphertext": self.ciphertext.hex(),
        }

    def to_bytes(self) -> bytes:
        # Byte-identical to json.dumps(self.to_json(), separators=(",", ":")).encode(): hex needs
        # no escaping, and formatting skips building a JSON encoder on every reply.
        return b'{"ephemeralPublicKey":"%s","nonce":"%s","ciphertext":"%s"}' % (
            self.ephemeral_public_key.hex().encode(), self.nonce.hex().encode(), self.ciphertext.hex().encode()
        )


def unhex(text: str) -> bytes | None:
    """[0-9a-fA-F]* of even length as bytes, else None (no 0x, no whitespace) (spec §3.5)."""
    # fromhex refuses odd lengths and non-hex characters but skips ASCII whitespace; skipped
    # whitespace shows as fewer bytes than half the characters.
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return None
    return raw if 2 * len(raw) == len(text) else None


def _field(obj: dict, name: str) -> bytes:
    """A hex field of the envelope."""
    text = obj.get(name)
    if type(text) is not str:
        what = "missing" if name not in obj else "not a string"
        raise EnvelopeError(EnvelopeCode.INVALID_ENVELOPE, f"field {name!r} is {what}")
    raw = unhex(text)
    if raw is None:
        raise EnvelopeError(EnvelopeCode.INVALID_HEX, f"field {name!r} is not even-length hex")
    return raw


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise EnvelopeError(EnvelopeCode.INVALID_JSON, "duplicate key in JSON object")
    return obj


def parse_body(body: bytes) -> Envelope:
    """Parse a POSTed request body into an envelope, or raise a typed :class:`EnvelopeError`."""
    if len(body) > MAX_BODY_BYTES:
        raise EnvelopeError(EnvelopeCode.PAYLOAD_TOO_LARGE, f"body exceeds {MAX_BODY_BYTES} bytes")
    # orjson first: several times faster, and this runs on every request (bench/bench_ping.py).
    # It accepts strict RFC 8259 JSON only, and reads it as the standard library does except for
    # integers beyond 64 bits (floats), which no envelope field can be. Everything it refuses goes
    # to the standard library, so accepted inputs and error codes are those of the strict path.
    # Duplicate keys: every key-value pair costs one ':' byte, so a body with no more colons than
    # top-level keys has no duplicate; any other body goes through the duplicate-rejecting hook.
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = None
    if type(obj) is not dict or body.count(b":") != len(obj):
        obj = _parse_json_strictly(body)
    return Envelope.from_json(obj)


def _parse_json_strictly(body: bytes) -> object:
    try:
        return json.loads(body.decode("utf-8"), object_pairs_hook=_reject_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise EnvelopeError(EnvelopeCode.INVALID_JSON, "request body is not UTF-8 JSON") from None


def public_key(secret: bytes) -> bytes:
    return sodium.crypto_scalarmult_base(secret)


def _derive_key(secret: bytes, peer_public: bytes) -> bytes:
    try:
        # libsodium refuses an all-zero shared secret, i.e. a low-order peer point (spec §3.6).
        shared = sodium.crypto_scalarmult(secret, peer_public)
    except nacl.exceptions.RuntimeError:
        raise EnvelopeError(EnvelopeCode.LOW_ORDER_PUBLIC_KEY, "public key has low order") from None
    return HKDF(hashes.SHA256(), KEY_BYTES, None, HKDF_INFO).derive(shared)


def seal(recipient_public: bytes, plaintext: bytes, *, ephemeral_secret: bytes, nonce: bytes) -> Envelope:
    key = _derive_key(ephemeral_secret, recipient_public)
    ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, None, nonce, key)
    return Envelope(public_key(ephemeral_secret), nonce, ciphertext)


def open_envelope(envelope: Envelope, recipient_secret: bytes) -> bytes:
    key = _derive_key(recipient_secret, envelope.ephemeral_public_key)
    try:
        return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            envelope.ciphertext, None, envelope.nonce, key
        )
    except nacl.exceptions.CryptoError:
        raise EnvelopeError(EnvelopeCode.DECRYPTION_FAILED, "ciphertext failed authentication") from None


class ReplySealer:
    """The reply's fresh key material, made once the request has opened (spec §3.3).

    Nothing in it depends on the reply, so the enclave makes it before running the operation and
    the request's crypto runs in one stretch. A request that fails to open never gets here, so a
    forged request still costs the enclave one X25519, not three.
    """

    __slots__ = ("ephemeral_public_key", "nonce", "_key")

    def __init__(self, client_public: bytes, random_bytes: Callable[[int], bytes]):
        secret = random_bytes(KEY_BYTES)
        self.nonce = random_bytes(NONCE_BYTES)
        self._key = _derive_key(secret, client_public)
        self.ephemeral_public_key = public_key(secret)

    def seal(self, plaintext: bytes) -> Envelope:
        ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, None, self.nonce, self._key)
        return Envelope(self.ephemeral_public_key, self.nonce, ciphertext)


def seal_response(client_public: bytes, plaintext: bytes, random_bytes: Callable[[int], bytes]) -> Envelope:
    """Seal a reply to the client: fresh ephemeral secret and fresh nonce every time (spec §3.3)."""
    return ReplySealer(client_public, random_bytes).seal(plaintext)
