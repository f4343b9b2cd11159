"""PostgreSQL behind :class:`~reference.enclave.store.KeyValueStore` (spec §7.2), for several
Vault instances sharing one database.

Same semantics as :class:`~reference.enclave.store.SqliteStore`:

* one table ``(seq, k, g, v)``; ``group`` lists by ``seq``, an identity column, so entries come
  back in insertion order; an upsert replaces the value and keeps the row's group and position;
* ``transaction()`` serialises writers across every process on the database. It takes
  ``pg_advisory_xact_lock`` right after ``BEGIN``, as SQLite's ``BEGIN IMMEDIATE`` takes the
  write lock: a rotation looks its code up, then deletes and writes, and only a lock held from
  the first read makes concurrent rotations of one account succeed at most once (spec §6.4).
  SERIALIZABLE would detect the conflict too, but only by failing one transaction, and the
  operation code inside a ``with`` block cannot be re-run from here. The lock is released at
  COMMIT or ROLLBACK, and by the server when a session dies, so a crashed instance holds nothing;
* durability (spec 7.6): every session sets ``synchronous_commit = on`` (overriding a server or
  database default), so COMMIT returns only after the WAL is flushed (and reached a synchronous
  standby when the server names one); a server running with ``fsync = off`` is refused;
* threads: one connection per thread, opened on first use; a transaction stays on its thread's
  connection.

Failures of the database (unreachable, restarted, session killed, lock or statement timeout)
raise :class:`StoreUnavailable`; a broken connection is dropped and the next call opens a new
one. Timeouts on connect, on TCP and on the server side bound every wait, so a request fails
instead of hanging.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .errors import VaultError
from .store import StoreError

T = TypeVar("T")

TABLE = "vault_entries"
# One lock for the whole table, as SQLite has one write lock per database file.
WRITE_LOCK = int.from_bytes(hashlib.sha256(b"vault-reference/v1/store-write-lock").digest()[:8], "big", signed=True)

# Defaults that a ``key=value`` in the URL overrides. TCP keepalives and tcp_user_timeout turn a
# silent peer (a partitioned or frozen server) into an error instead of an endless read.
CONNECTION_DEFAULTS = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "3",
    "keepalives_count": "3",
    "tcp_user_timeout": "15000",
    "application_name": "vault-reference",
}
# Session settings; ``options`` in the URL are appended, so the URL's ``-c`` wins where it repeats
# one. idle_in_transaction_session_timeout frees the write lock of a client that stalls mid-transaction.
SESSION_OPTIONS = ("-c synchronous_commit=on -c lock_timeout=10s -c statement_timeout=30s "
                   "-c idle_in_transaction_session_timeout=30s")


class StoreUnavailable(StoreError):
    """The database could not be reached or failed during the request; the next call reconnects."""


class StoreNotDurable(VaultError):
    """The server would acknowledge commits it can still lose (spec 7.6)."""


# Last, so that nothing in the URL can turn it off (spec 7.6); the constructor checks it too.
DURABLE_COMMITS = "-c synchronous_commit=on"


def connection_string(url: str) -> str:
    params = {**CONNECTION_DEFAULTS, **conninfo_to_dict(url)}
    params["options"] = " ".join(filter(None, [SESSION_OPTIONS, params.get("options"), DURABLE_COMMITS]))
    return make_conninfo(**params)


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())  # libpq's messages carry "\n\tIs the server running..."


class PostgresStore:
    def __init__(self, url: str):
        self._conninfo = connection_string(url)
        self._local = threading.local()
        self._open: weakref.WeakSet[psycopg.Connection] = weakref.WeakSet()
        self._open_lock = threading.Lock()
        with self.transaction():
            # Under the write lock: instances starting together must not race on CREATE TABLE.
            self._in_transaction(lambda conn: conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} ("
                " seq bigint GENERATED ALWAYS AS IDENTITY,"
                " k bytea PRIMARY KEY, g bytea, v bytea NOT NULL)"))
            self._in_transaction(lambda conn: conn.execute(
                f"CREATE INDEX IF NOT EXISTS {TABLE}_group ON {TABLE} (g, seq)"))
            fsync = self._in_transaction(lambda conn: conn.execute("SHOW fsync").fetchone()[0])
            commits = self._in_transaction(lambda conn: conn.execute("SHOW synchronous_commit").fetchone()[0])
        if commits not in ("on", "remote_apply"):
            self.close()
            raise StoreNotDurable(f"sessions run with synchronous_commit={commits}: acknowledged commits can be lost")
        if fsync != "on":
            # Spec 7.6: no acknowledged change may be lost; without fsync a crash can lose commits.
            self.close()
            raise StoreNotDurable(f"the PostgreSQL server runs with fsync={fsync}: its commits can be lost")

    # ---- the interface ---------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        row = self._statement(lambda conn: conn.execute(f"SELECT v FROM {TABLE} WHERE k = %s", (key,)).fetchone())
        return row[0] if row else None

    def put(self, key: bytes, value: bytes, group: bytes | None = None) -> None:
        self._write(lambda conn: conn.execute(
            f"INSERT INTO {TABLE} (k, g, v) VALUES (%s, %s, %s) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
            (key, group, value)))

    def delete(self, key: bytes) -> None:
        self._write(lambda conn: conn.execute(f"DELETE FROM {TABLE} WHERE k = %s", (key,)))

    def group(self, group: bytes) -> list[tuple[bytes, bytes]]:
        rows = self._statement(lambda conn: conn.execute(
            f"SELECT k, v FROM {TABLE} WHERE g = %s ORDER BY seq", (group,)).fetchall())
        return [(bytes(k), bytes(v)) for k, v in rows]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if getattr(self._local, "transaction", None) is not None:
            raise RuntimeError("store transactions do not nest")
        # READ COMMITTED, whatever the server's default: each statement then reads what was
        # committed before it, including by the lock's previous holder. REPEATABLE READ would
        # take its snapshot at the first statement, before the lock wait, and read stale rows.
        conn = self._statement(self._begin)
        self._local.transaction = conn
        try:
            yield
        except BaseException:
            self._local.transaction = None
            self._rollback(conn)
            raise
        self._local.transaction = None
        self._guarded(conn, lambda c: c.execute("COMMIT"))

    def close(self) -> None:
        with self._open_lock:
            connections = list(self._open)
        for conn in connections:
            conn.close()

    # ---- connections and errors ------------------------------------------------------------
    @staticmethod
    def _begin(conn: psycopg.Connection) -> psycopg.Connection:
        try:
            # No parameters: one round trip for both statements.
            conn.execute(f"BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({WRITE_LOCK})")
        except psycopg.Error:
            if not conn.broken and not conn.closed:
                conn.execute("ROLLBACK")  # e.g. lock_timeout: leave the connection usable
            raise
        return conn

    def _rollback(self, conn: psycopg.Connection) -> None:
        if conn.broken or conn.closed:
            return  # the server rolled back when the session ended
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            self._discard(conn)

    def _write(self, work: Callable[[psycopg.Connection], object]) -> None:
        if getattr(self._local, "transaction", None) is not None:
            self._in_transaction(work)
        else:
            # A lone write takes the write lock too, as in SQLite: it must not land between a
            # transaction's read and the write that depends on it.
            with self.transaction():
                self._in_transaction(work)

    def _in_transaction(self, work: Callable[[psycopg.Connection], T]) -> T:
        return self._guarded(self._local.transaction, work)

    def _statement(self, work: Callable[[psycopg.Connection], T]) -> T:
        """``work`` on the thread's transaction, else on its connection in autocommit mode.

        An idle connection may have died since its last use (a server restart); a statement that
        finds it so is retried once on a new connection. Only the first statement of a
        transaction or a lone read gets here, so nothing of the request has happened yet.
        """
        transaction = getattr(self._local, "transaction", None)
        if transaction is not None:
            return self._guarded(transaction, work)
        conn = getattr(self._local, "connection", None)
        if conn is None:
            return self._guarded(self._connection(), work)
        try:
            return self._guarded(conn, work)
        except StoreUnavailable:
            if getattr(self._local, "connection", None) is not None:
                raise  # the connection is fine: a timeout, not a stale session
            return self._guarded(self._connection(), work)

    def _connection(self) -> psycopg.Connection:
        conn = getattr(self._local, "connection", None)
        if conn is None or conn.closed:
            try:
                conn = psycopg.connect(self._conninfo, autocommit=True)
            except psycopg.Error as error:
                raise StoreUnavailable(f"cannot connect to the database: {_one_line(error)}") from error
            self._local.connection = conn
            with self._open_lock:
                self._open.add(conn)
        return conn

    def _guarded(self, conn: psycopg.Connection, work: Callable[[psycopg.Connection], T]) -> T:
        try:
            return work(conn)
        except (psycopg.OperationalError, psycopg.InterfaceError) as error:
            # OperationalError covers a lost connection, an administrator shutdown, lock and
            # statement timeouts; InterfaceError a connection already closed.
            if conn.broken or conn.closed:
                self._discard(conn)
            raise StoreUnavailable(f"database error: {_one_line(error)}") from error

    def _discard(self, conn: psycopg.Connection) -> None:
        if getattr(self._local, "connection", None) is conn:
            self._local.connection = None
        try:
            conn.close()
        except psycopg.Error:
            pass
