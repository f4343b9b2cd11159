"""The enclave's request loop (spec §3–§4): open the envelope, run the operation, seal the reply.

Sans-IO: :meth:`Enclave.handle_envelope` takes the POSTed bytes and returns an HTTP status and
the bytes to answer with. The host never sees anything but those bytes. Clock, randomness and
storage are passed in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, NamedTuple

import nacl.exceptions
import orjson

from . import attestation, envelope
from .errors import EnvelopeCode, EnvelopeError, OperationCode, OperationError, VaultError
from .keyring import DEFAULT_STATIC_KEY_EPOCH, Keyring
from .nsm import SimulatedNsm
from .store import KeyValueStore, SealedStore

LEGACY_STATIC_KEY_ADDRESS = ("enclave", "static-x25519")  # removed on start (spec §11.3)
# Unkeyed, well-known address of a sealed marker: it lets a restart with the wrong master key fail
# loudly instead of silently starting a second, empty Vault beside the first one's records.
KEY_CHECK_ADDRESS = hashlib.sha256(b"vault-reference/v1/key-check").digest()


@dataclass(frozen=True)
class KeyPolicySource:
    """Where ``enclave:keyPolicy`` reads the master key's policy: the key ARN and a fetcher
    (GetKeyPolicy through the enclave's KMS client, at request time)."""

    key_arn: str
    fetch: Callable[[str], str]


class MasterKeyMismatch(VaultError):
    """The master key cannot open this database's records."""


_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))  # built once: json.dumps with options builds one per call


# orjson serialises only plain JSON types with these options; anything else raises instead of
# being converted (datetimes, dataclasses, str/int/dict subclasses such as enums).
_ORJSON_PLAIN = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def encode_reply(result: dict) -> bytes:
    """Compact JSON of a reply.

    orjson is ~10x faster than the standard library, and every request pays for this
    (bench/bench_ping.py). What orjson refuses (integers beyond 64 bits, non-string keys, the
    types above) takes the standard library's encoder, so no value changes on the way, with one
    exception: a non-finite float is written as null where the standard library would write
    NaN/Infinity, which is not JSON. Non-ASCII text is written as UTF-8, not \\u escapes.
    """
    try:
        return orjson.dumps(result, option=_ORJSON_PLAIN)
    except orjson.JSONEncodeError:
        return _COMPACT_JSON.encode(result).encode()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Request(NamedTuple):
    """A decrypted request (spec §3.2 step 5). Immutable; a NamedTuple is built in half the time
    of a frozen dataclass, and one is built per request."""

    operation: str
    auth: dict | None
    options: dict
    client_public_key: bytes = b""  # the request envelope's ephemeralPublicKey
    response_binding: str | None = None  # the caller's secret to echo in the reply (spec 10.7.2)


RESPONSE_BINDING = "responseBinding"  # request and reply member of spec 10.7.2


def _response_binding(obj: dict) -> str | None:
    """The request's ``responseBinding``: 64 lowercase hex digits (32 random bytes), or absent."""
    if RESPONSE_BINDING not in obj:
        return None
    value = obj[RESPONSE_BINDING]
    if not (isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
        raise OperationError(OperationCode.INVALID_INPUT, "responseBinding must be 64 lowercase hex digits")
    return value


class ReplayWindow:
    """The ephemeral keys of the last ``size`` requests that opened (spec 10.7.1); thread-safe.

    Bounded by memory, per instance: a replay after the window has moved on, or to another
    instance, is not caught. An honest client never repeats a key (3.2), so it never trips this."""

    def __init__(self, size: int):
        self.size = size
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def seen_before(self, key: bytes) -> bool:
        with self._lock:
            if key in self._seen:
                return True
            self._seen[key] = None
            if len(self._seen) > self.size:
                self._seen.popitem(last=False)
            return False


@dataclass
class OperationContext:
    """What an operation handler may use; everything with side effects is injected."""

    store: SealedStore
    keyring: Keyring
    now: Callable[[], datetime]
    random_bytes: Callable[[int], bytes]
    enclave: "Enclave"
    extras: dict[str, Any] = field(default_factory=dict)

    def timestamp(self) -> str:
        return iso8601(self.now())


def iso8601(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Handler = Callable[[OperationContext, Request], dict]


# Every byte to b"0" if it is a decimal digit, else to b" ": a run of 19 digits shows as 19 b"0".
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_INTEGER = b"0" * 19


def _loads_plaintext(plaintext: bytes) -> object:
    """The request's JSON, exactly as the standard library reads it, via orjson when that is safe.

    orjson reads the same value as the standard library from any JSON it accepts, except integers
    beyond 64 bits, which it turns into floats; such an integer has at least 19 digits in a row.
    Plaintexts with such a run, and whatever orjson refuses, take the standard library.
    """
    if _LONG_INTEGER not in plaintext.translate(_DIGITS_AS_ZERO):
        try:
            value = orjson.loads(plaintext)
        except orjson.JSONDecodeError:
            pass
        else:
            # orjson keeps the last of duplicated members. Every member costs one ':' outside
            # strings, so a plaintext with no more colons than members has no duplicate (the
            # usual case); any other takes the standard library with the duplicate check.
            if plaintext.count(b":") == _member_count(value):
                return value
    return json.loads(plaintext.decode("utf-8"), object_pairs_hook=_no_duplicate_members)


class DuplicateMember(ValueError):
    pass


def _no_duplicate_members(pairs: list) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise DuplicateMember("duplicate member name")
    return obj


def _member_count(value: object) -> int:
    """The number of object members in a JSON value, nested ones included (no recursion)."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def parse_request(plaintext: bytes, client_public_key: bytes = b"") -> Request:
    try:
        obj = _loads_plaintext(plaintext)
    except DuplicateMember:
        raise OperationError(OperationCode.SERIALIZATION_ERROR,
                             "request plaintext has a duplicated member name (spec 3.5 refuses them)") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise OperationError(OperationCode.SERIALIZATION_ERROR, "request plaintext is not UTF-8 JSON") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("operation"), str):
        raise OperationError(
            OperationCode.SERIALIZATION_ERROR, "request must be an object with a string 'operation'"
        )
    binding = _response_binding(obj)
    auth = obj.get("auth")
    options = obj.get("options", {})
    if auth is not None and not isinstance(auth, dict):
        raise OperationError(OperationCode.SERIALIZATION_ERROR, "'auth' must be an object")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise OperationError(OperationCode.SERIALIZATION_ERROR, "'options' must be an object")
    return Request(obj["operation"], auth, options, client_public_key, binding)


class Enclave:
    def __init__(
        self,
        *,
        kv: KeyValueStore,
        master_key: bytes,
        now: Callable[[], datetime] = utc_now,
        random_bytes: Callable[[int], bytes] = os.urandom,
        logger: logging.Logger | None = None,
        operations: dict[str, Handler] | None = None,
        nsm=None,
        static_key_epoch: int = DEFAULT_STATIC_KEY_EPOCH,
        key_policy_source: "KeyPolicySource | None" = None,
        replay_window: int = 0,
        response_binding: bool = True,
    ):
        from .operations import default_operations

        self._random = random_bytes
        self._log = logger or logging.getLogger("vault.enclave")
        keyring = Keyring(master_key, static_key_epoch)
        self.store = SealedStore(kv, keyring, random_bytes)
        self.context = OperationContext(self.store, keyring, now, random_bytes, self)
        self.operations = operations if operations is not None else default_operations()
        self._check_master_key()
        # Derived, not stored (spec §11.3): the same master key and epoch give the same key.
        self._static_secret = keyring.static_secret
        self.public_key = envelope.public_key(self._static_secret)
        self.nsm = nsm
        self.context.extras["nsm"] = nsm
        self.context.extras["key_policy"] = key_policy_source
        self.static_key_epoch = keyring.static_key_epoch
        # Opt-in mitigations of section 10 (10.7): a replay window (off unless sized), and the echo
        # of a caller's responseBinding (on; only a caller that sends one sees any difference).
        self.replay_window = ReplayWindow(replay_window) if replay_window > 0 else None
        self.response_binding = response_binding

    def _check_master_key(self) -> None:
        with self.store.transaction():
            try:
                marker = self.store.get(KEY_CHECK_ADDRESS)
            except nacl.exceptions.CryptoError:
                raise MasterKeyMismatch("the master key does not open this Vault's database") from None
            if marker is None:
                self.store.put(KEY_CHECK_ADDRESS, {"keyCheck": True})
            # Migration: databases from before §11.3 kept a random static key as a sealed record.
            # It is dropped: the static key is now derived from the master key and the epoch.
            self.store.delete(self.store.address(*LEGACY_STATIC_KEY_ADDRESS))

    def handle_message(self, kind: str, body: bytes) -> tuple[int, bytes]:
        """The transport's single entry point: a message kind and opaque bytes (spec §2)."""
        if kind == "envelope":
            return self.handle_envelope(body)
        if kind == "public-key":
            return 200, json.dumps({"publicKey": self.public_key.hex()}).encode()
        if kind == "attest" and self.nsm is not None:
            try:
                return 200, json.dumps(attestation.plain_attest(self.nsm, self.public_key, body)).encode()
            except EnvelopeError as error:
                return error.status, json.dumps(error.to_json()).encode()
        if kind == "attestation-dev-root" and (isinstance(self.nsm, SimulatedNsm)
                                               or getattr(self.nsm, "development_root", False)):
            # Only a simulated NSM's root is served: it is a development root, never a trust anchor.
            return 200, json.dumps({"rootPem": self.nsm.root_pem().decode()}).encode()
        error = EnvelopeError(EnvelopeCode.NOT_FOUND, f"unknown enclave message {kind!r}")
        return error.status, json.dumps(error.to_json()).encode()

    def handle_envelope(self, body: bytes) -> tuple[int, bytes]:
        """POST body in, (status, body) out. Only unencrypted errors leave in the clear."""
        try:
            request_envelope = envelope.parse_body(body)
            plaintext = envelope.open_envelope(request_envelope, self._static_secret)
        except EnvelopeError as error:
            return error.status, json.dumps(error.to_json()).encode()
        sealer = envelope.ReplySealer(request_envelope.ephemeral_public_key, self._random)
        if self.replay_window is not None and self.replay_window.seen_before(request_envelope.ephemeral_public_key):
            # Sealed like any reply: only the original sender could read it, and it never repeats.
            reply = encode_reply(OperationError(OperationCode.REPLAYED_REQUEST,
                                                "this request was already received (replay window)").to_json())
            return 200, sealer.seal(reply).to_bytes()
        reply = self.run(plaintext, request_public_key=request_envelope.ephemeral_public_key)
        return 200, sealer.seal(reply).to_bytes()

    def run(self, plaintext: bytes, request_public_key: bytes = b"") -> bytes:
        """Run one decrypted request; every outcome becomes an encrypted JSON reply (spec §4.2)."""
        request = None
        try:
            request = parse_request(plaintext, request_public_key)
            handler = self.operations.get(request.operation)
            if handler is None:
                raise OperationError(
                    OperationCode.UNKNOWN_OPERATION, f"unknown operation {request.operation!r}"
                )
            result = {"success": True, "data": handler(self.context, request), "error": None}
        except OperationError as error:
            result = error.to_json()
        except VaultError as error:  # a known failure outside the operation (the database): one line
            self._log.error("operation failed: %s", error)
            result = OperationError(OperationCode.INTERNAL_SERVER_ERROR, "internal error").to_json()
        except Exception:  # a bug: log it inside the enclave, tell the client nothing more
            self._log.exception("operation failed")
            result = OperationError(OperationCode.INTERNAL_SERVER_ERROR, "internal error").to_json()
        if request is not None and request.response_binding is not None and self.response_binding:
            result[RESPONSE_BINDING] = request.response_binding  # 10.7.2: only the enclave could read it
        return encode_reply(result)
