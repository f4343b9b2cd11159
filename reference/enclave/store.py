"""Encrypted entity storage (spec §7).

Two layers: :class:`KeyValueStore` holds opaque bytes under opaque keys (SQLite here; the same
interface suits PostgreSQL), and :class:`SealedStore` puts every value under XChaCha20-Poly1305
with the record key and every key through the keyring's HMAC. The storage layer never sees an
identifier, a secret or a plaintext byte.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Callable, Iterator, Protocol

import nacl.bindings as sodium

from .errors import VaultError
from .keyring import Keyring

NONCE_BYTES = 24


class KeyValueStore(Protocol):
    """Opaque keys to opaque values; ``group`` lists the entries written with a group key."""

    def get(self, key: bytes) -> bytes | None: ...
    def put(self, key: bytes, value: bytes, group: bytes | None = None) -> None: ...
    def delete(self, key: bytes) -> None: ...
    def group(self, group: bytes) -> list[tuple[bytes, bytes]]: ...
    def transaction(self) -> AbstractContextManager[None]: ...


class StoreError(VaultError):
    """The database failed (a full disk, an I/O error, a lost server): the request gets the
    encrypted internal error and the enclave logs one line, not a traceback."""


@contextmanager
def _sqlite_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as error:
        raise StoreError(f"database error: {error}") from error


class SqliteStore:
    """A single-table store; ``transaction()`` makes a group of writes atomic."""

    def __init__(self, path: Path | str):
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before it is acknowledged. NORMAL (the WAL default) may lose the
        # last commits on power loss, e.g. an acknowledged rotation, leaving the client holding a
        # dead key (spec 7.6).
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS entries (k BLOB PRIMARY KEY, g BLOB, v BLOB NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS entries_group ON entries (g)")
        self._lock = threading.RLock()

    def get(self, key: bytes) -> bytes | None:
        with _sqlite_errors():
            row = self._db.execute("SELECT v FROM entries WHERE k = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: bytes, value: bytes, group: bytes | None = None) -> None:
        with _sqlite_errors():
            self._db.execute(
                "INSERT INTO entries (k, g, v) VALUES (?, ?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                (key, group, value),
            )

    def delete(self, key: bytes) -> None:
        with _sqlite_errors():
            self._db.execute("DELETE FROM entries WHERE k = ?", (key,))

    def group(self, group: bytes) -> list[tuple[bytes, bytes]]:
        with _sqlite_errors():
            rows = self._db.execute("SELECT k, v FROM entries WHERE g = ? ORDER BY rowid", (group,)).fetchall()
        return [(row[0], row[1]) for row in rows]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            with _sqlite_errors():
                self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                with _sqlite_errors():
                    self._db.execute("COMMIT")
            except BaseException:
                # Also when COMMIT itself failed (a full disk): never leave the transaction open.
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._db.close()


def _record_json(record: dict) -> bytes:
    """Compact JSON in UTF-8: an astral character costs 4 bytes, not a 12-byte \\u escape pair.
    A record holding a lone surrogate (which has no UTF-8 form) is written with escapes instead."""
    try:
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(record, separators=(",", ":")).encode()


class SealedStore:
    """JSON records sealed under the record key, addressed by HMAC-hashed identifiers.

    The AAD binds each ciphertext to its (hashed) address, so a record moved to another row
    fails to open instead of being read as someone else's.
    """

    def __init__(self, kv: KeyValueStore, keyring: Keyring, random_bytes: Callable[[int], bytes]):
        self._kv = kv
        self._keyring = keyring
        self._random = random_bytes

    def address(self, kind: str, ident: str) -> bytes:
        return self._keyring.identifier(kind, ident)

    def _seal(self, address: bytes, record: dict) -> bytes:
        nonce = self._random(NONCE_BYTES)
        plaintext = _record_json(record)
        return nonce + sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
            plaintext, address, nonce, self._keyring.record_key
        )

    def _open(self, address: bytes, blob: bytes) -> dict:
        plaintext = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            blob[NONCE_BYTES:], address, blob[:NONCE_BYTES], self._keyring.record_key
        )
        return json.loads(plaintext)

    def get(self, address: bytes) -> dict | None:
        blob = self._kv.get(address)
        return None if blob is None else self._open(address, blob)

    def put(self, address: bytes, record: dict, group: bytes | None = None) -> None:
        self._kv.put(address, self._seal(address, record), group)

    def delete(self, address: bytes) -> None:
        self._kv.delete(address)

    def group(self, group: bytes) -> list[dict]:
        return [self._open(address, blob) for address, blob in self._kv.group(group)]

    def transaction(self):
        return self._kv.transaction()
