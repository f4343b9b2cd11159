"""The master key and the keys derived from it (spec §7).

Only the enclave ever holds these. The master key is a KMS data key released only to an enclave
with the right PCRs (``kms.py``, spec §11), or, for development only, a local file
(:class:`FileMasterKey`, behind ``--insecure-dev-master-key-file``). Every other key, the
enclave's static X25519 key included, is derived from it with HKDF-SHA256 under a distinct
label, so one secret protects everything and no derived key can be used in another role.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MASTER_KEY_BYTES = 32
DEFAULT_STATIC_KEY_EPOCH = 1


class MasterKeySource(Protocol):
    def load(self) -> bytes: ...


@dataclass
class FileMasterKey:
    """Development key source: a 32-byte file created on first use with mode 0600."""

    path: Path

    def load(self) -> bytes:
        try:
            key = self.path.read_bytes()
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(MASTER_KEY_BYTES))
            key = self.path.read_bytes()
        if len(key) != MASTER_KEY_BYTES:
            raise ValueError(f"master key file must hold {MASTER_KEY_BYTES} bytes, found {len(key)}")
        return key


def check_epoch(epoch: int) -> int:
    if type(epoch) is not int or not 1 <= epoch < 2**32:
        raise ValueError(f"static key epoch must be an integer in 1..2^32-1, not {epoch!r}")
    return epoch


def _derive(master: bytes, label: str) -> bytes:
    return HKDF(hashes.SHA256(), 32, None, b"vault-reference/v1/" + label.encode()).derive(master)


def _utf8(text: str) -> bytes:
    # A credential or id from JSON may hold a lone surrogate ("\ud800"), which has no UTF-8 form;
    # it is hashed anyway (surrogatepass) so that it is simply a value no account has, and the
    # request gets its auth or not-found error instead of an internal one.
    return text.encode("utf-8", "surrogatepass")


class Keyring:
    """Keys derived from the master key, one per role."""

    def __init__(self, master_key: bytes, static_key_epoch: int = DEFAULT_STATIC_KEY_EPOCH):
        if len(master_key) != MASTER_KEY_BYTES:
            raise ValueError("master key must be 32 bytes")
        self.record_key = _derive(master_key, "record-encryption")
        self._identifier_key = _derive(master_key, "identifier-hmac")
        self._secret_key = _derive(master_key, "secret-hmac")
        self.static_key_epoch = check_epoch(static_key_epoch)
        # Every instance holding this master key answers to the same static key (spec §11.3);
        # rotating it is an epoch bump, not a new random key to distribute.
        self.static_secret = _derive(master_key, f"static-x25519/epoch/{static_key_epoch}")

    def identifier(self, kind: str, value: str) -> bytes:
        """HMAC of an entity identifier: the only form in which ids appear in the database."""
        return hmac.new(self._identifier_key, _utf8(f"{kind}\x00{value}"), hashlib.sha256).digest()

    def secret_digest(self, kind: str, secret: str) -> bytes:
        """Keyed hash of a bearer secret (admin key, rotation code, access token).

        The secrets are 256-bit random strings, so a keyed hash (pepper = enclave-only key) is the
        right tool: lookups stay O(1), and a copy of the database alone reveals nothing.
        """
        return hmac.new(self._secret_key, _utf8(f"{kind}\x00{secret}"), hashlib.sha256).digest()
