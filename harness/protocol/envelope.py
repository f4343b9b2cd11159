"""The E2E envelope, client side, written apart from the reference on purpose.

It uses pyca/cryptography's X25519 (the reference uses libsodium's) so that a bug in one key
agreement cannot hide in both. XChaCha20-Poly1305 exists only in libsodium (PyNaCl) here.
Spec §3: HKDF-SHA256(salt absent, info "encryption", 32 bytes); 24-byte nonce; empty AAD.
"""

from __future__ import annotations

import enum
import json
import string
from dataclasses import dataclass

import nacl.bindings as sodium
import nacl.exceptions
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 24
TAG_BYTES = 16
HKDF_INFO = b"encryption"


class ErrorCode(str, enum.Enum):
    INVALID_JSON = "invalid_json"
    INVALID_ENVELOPE = "invalid_envelope"
    INVALID_HEX = "invalid_hex"
    INVALID_LENGTH = "invalid_length"
    LOW_ORDER_PUBLIC_KEY = "low_order_public_key"
    DECRYPTION_FAILED = "decryption_failed"


class EnvelopeError(Exception):
    def __init__(self, code: ErrorCode, message: str):
        super().__init__(f"{code.value}: {message}")
        self.code = code


_HEXDIGITS = frozenset(string.hexdigits)


def _unhex(name: str, value: object, length: int | None) -> bytes:
    if not isinstance(value, str):
        raise EnvelopeError(ErrorCode.INVALID_ENVELOPE, f"{name} is missing or not a string")
    if len(value) % 2 or not _HEXDIGITS.issuperset(value):
        raise EnvelopeError(ErrorCode.INVALID_HEX, f"{name} is not even-length hex")
    raw = bytes.fromhex(value)
    if length is not None and len(raw) != length:
        raise EnvelopeError(ErrorCode.INVALID_LENGTH, f"{name} is {len(raw)} bytes, expected {length}")
    return raw


@dataclass(frozen=True)
class Envelope:
    ephemeral_public_key: bytes
    nonce: bytes
    ciphertext: bytes

    @classmethod
    def from_json(cls, obj: object) -> "Envelope":
        if not isinstance(obj, dict):
            raise EnvelopeError(ErrorCode.INVALID_JSON, "envelope is not a JSON object")
        envelope = cls(
            _unhex("ephemeralPublicKey", obj.get("ephemeralPublicKey"), KEY_BYTES),
            _unhex("nonce", obj.get("nonce"), NONCE_BYTES),
            _unhex("ciphertext", obj.get("ciphertext"), None),
        )
        if len(envelope.ciphertext) < TAG_BYTES:
            raise EnvelopeError(ErrorCode.INVALID_LENGTH, "ciphertext is shorter than the tag")
        return envelope

    def to_json(self) -> dict:
        return {
            "ephemeralPublicKey": self.ephemeral_public_key.hex(),
            "nonce": self.nonce.hex(),
            "ciphertext": self.ciphertext.hex(),
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json()).encode()


def public_key(secret: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()


def shared_secret(secret: bytes, peer_public: bytes) -> bytes:
    """Raw X25519, refusing an all-zero result (spec §3.6)."""
    try:
        return X25519PrivateKey.from_private_bytes(secret).exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError:
        raise EnvelopeError(ErrorCode.LOW_ORDER_PUBLIC_KEY, "shared secret is all zero") from None


def hkdf(shared: bytes, *, info: bytes = HKDF_INFO, salt: bytes | None = None) -> bytes:
    """The envelope's KDF (spec §3.2 step 3); ``info`` and ``salt`` vary only to forge on purpose."""
    return HKDF(hashes.SHA256(), KEY_BYTES, salt, info).derive(shared)


# The key a Vault that skips the low-order check derives for every low-order peer key: X25519
# gives 32 zero bytes, and HKDF runs on them (spec §3.6). Anyone can compute it.
LOW_ORDER_KEY = hkdf(bytes(KEY_BYTES))


def encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes | None = None) -> bytes:
    return sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, nonce, key)


def decrypt(key: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    try:
        return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, None, nonce, key)
    except nacl.exceptions.CryptoError:
        raise EnvelopeError(ErrorCode.DECRYPTION_FAILED, "ciphertext failed authentication") from None


def derive_key(secret: bytes, peer_public: bytes) -> bytes:
    """X25519 then HKDF; an all-zero shared secret (low-order peer) is an error."""
    try:
        shared = X25519PrivateKey.from_private_bytes(secret).exchange(
            X25519PublicKey.from_public_bytes(peer_public)
        )
    except ValueError:
        raise EnvelopeError(ErrorCode.LOW_ORDER_PUBLIC_KEY, "shared secret is all zero") from None
    return HKDF(hashes.SHA256(), KEY_BYTES, None, HKDF_INFO).derive(shared)


def seal(recipient_public: bytes, plaintext: bytes, *, ephemeral_secret: bytes, nonce: bytes) -> Envelope:
    key = derive_key(ephemeral_secret, recipient_public)
    ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, None, nonce, key)
    return Envelope(public_key(ephemeral_secret), nonce, ciphertext)


def open_envelope(envelope: Envelope, recipient_secret: bytes) -> bytes:
    key = derive_key(recipient_secret, envelope.ephemeral_public_key)
    try:
        return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(envelope.ciphertext, None, envelope.nonce, key)
    except nacl.exceptions.CryptoError:
        raise EnvelopeError(ErrorCode.DECRYPTION_FAILED, "ciphertext failed authentication") from None
