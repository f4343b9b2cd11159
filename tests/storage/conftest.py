"""A throwaway PostgreSQL cluster for the storage tests, and the store backends as one fixture.

The cluster is made with the server's own ``initdb``/``pg_ctl`` in a temporary directory on a
free loopback port, owned by the ``postgres`` user when the tests run as root (the server
refuses to run as root). Without the binaries the PostgreSQL tests skip, except under ``CI``,
where they fail: CI installs the server and must not pass by running half the suite.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import free_port

SERVER_USER = "postgres"


def _server_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required under CI: {reason}")
    pytest.skip(reason, allow_module_level=True)


def import_psycopg():
    """psycopg, or the PostgreSQL tests skip (fail under CI)."""
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed")
    return psycopg


class PostgresCluster:
    def __init__(self, bin_dir: Path, base: Path, port: int, as_user: str | None):
        self.bin_dir, self.base, self.port, self.as_user = bin_dir, base, port, as_user
        self.data = base / "data"
        self._names = itertools.count()

    def _run(self, tool: str, *args: str, timeout: float = 60) -> None:
        argv = [str(self.bin_dir / tool), *args]
        if self.as_user:
            argv = ["runuser", "-u", self.as_user, "--", *argv]
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if completed.returncode != 0:
            raise RuntimeError(f"{tool} failed: {completed.stdout}{completed.stderr}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-instructions", timeout=120)

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.base}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "server.log"), "-o", options,
                  "-w", "-t", "60", "start", timeout=90)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", timeout=90)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        import psycopg

        name = f"vault_test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_cluster():
    bin_dir = _server_bin()
    if bin_dir is None or not (bin_dir / "pg_ctl").exists():
        _unavailable("no PostgreSQL server binaries (initdb, pg_ctl)")
    import_psycopg()
    as_user = None
    if os.geteuid() == 0:
        try:
            server_user = pwd.getpwnam(SERVER_USER)
        except KeyError:
            _unavailable(f"running as root and there is no {SERVER_USER!r} user to run the server as")
        as_user = SERVER_USER
    base = Path(tempfile.mkdtemp(prefix="vault-pg-"))
    if as_user:
        os.chown(base, server_user.pw_uid, server_user.pw_gid)
    cluster = PostgresCluster(bin_dir, base, free_port(), as_user)
    cluster.init()
    cluster.start()
    yield cluster
    try:
        cluster.stop("immediate")
    except RuntimeError:
        pass  # a test stopped it already
    shutil.rmtree(base, ignore_errors=True)


class SqliteBackend:
    """One database file; every store opened on it is another "instance"."""

    name = "sqlite"

    def __init__(self, directory: Path):
        self.path = directory / "vault.sqlite3"
        self._stores: list = []

    def open(self):
        from reference.enclave.store import SqliteStore

        store = SqliteStore(self.path)
        self._stores.append(store)
        return store

    def rows(self) -> list[tuple[bytes, bytes | None, bytes]]:
        with sqlite3.connect(self.path) as db:
            return db.execute("SELECT k, g, v FROM entries ORDER BY rowid").fetchall()

    def raw_bytes(self) -> bytes:
        """Everything the database keeps on disk (main file, WAL, shared memory)."""
        return b"".join(p.read_bytes() for p in self.path.parent.iterdir() if p.name.startswith(self.path.name))

    def overwrite(self, key: bytes, value: bytes) -> None:
        with sqlite3.connect(self.path) as db:
            db.execute("UPDATE entries SET v = ? WHERE k = ?", (value, key))

    def close(self) -> None:
        for store in self._stores:
            store.close()


class PostgresBackend:
    name = "postgresql"

    def __init__(self, cluster: PostgresCluster):
        self.cluster = cluster
        self.url = cluster.create_database()
        self._stores: list = []

    def open(self):
        from reference.enclave.pg_store import PostgresStore

        store = PostgresStore(self.url)
        self._stores.append(store)
        return store

    def _admin(self):
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def rows(self) -> list[tuple[bytes, bytes | None, bytes]]:
        with self._admin() as db:
            return [(bytes(k), None if g is None else bytes(g), bytes(v))
                    for k, g, v in db.execute("SELECT k, g, v FROM vault_entries ORDER BY seq")]

    def raw_bytes(self) -> bytes:
        """Every stored byte as the server returns it (keys, groups, values)."""
        return b"".join(k + (g or b"") + v for k, g, v in self.rows())

    def overwrite(self, key: bytes, value: bytes) -> None:
        with self._admin() as db:
            db.execute("UPDATE vault_entries SET v = %s WHERE k = %s", (value, key))

    def close(self) -> None:
        for store in self._stores:
            store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        chosen = SqliteBackend(tmp_path)
    else:
        chosen = PostgresBackend(request.getfixturevalue("postgres_cluster"))
    yield chosen
    chosen.close()


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)
