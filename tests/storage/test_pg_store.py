"""What only the PostgreSQL store has to get right: durability settings, database failures that
answer instead of hanging, reconnecting, and instances starting together."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

from tests.storage.conftest import import_psycopg, wait_until

psycopg = import_psycopg()

from reference.enclave.pg_store import PostgresStore, StoreUnavailable  # noqa: E402 (needs psycopg)
from reference.enclave.service import Enclave  # noqa: E402
from tests.storage.test_store_backends import MASTER_KEY, call  # noqa: E402

KEY = b"k" * 32


@pytest.fixture
def database_url(postgres_cluster):
    return postgres_cluster.create_database()


def _session(store: PostgresStore):
    return store._connection()  # the calling thread's session


def test_commits_are_synchronous_whatever_the_database_default(database_url):
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {database_url.rsplit('/', 1)[1]} SET synchronous_commit = off")
    store = PostgresStore(database_url)
    assert _session(store).execute("SHOW synchronous_commit").fetchone()[0] == "on"
    store.close()


def test_url_options_override_the_session_defaults(database_url):
    store = PostgresStore(database_url + "?options=" + quote("-c lock_timeout=250ms"))
    assert _session(store).execute("SHOW lock_timeout").fetchone()[0] == "250ms"
    assert _session(store).execute("SHOW synchronous_commit").fetchone()[0] == "on"
    store.close()


def test_the_url_cannot_turn_synchronous_commit_off(database_url):
    # spec 7.6: the URL's options may tune timeouts, never durability
    store = PostgresStore(database_url + "?options=" + quote("-c synchronous_commit=off"))
    assert _session(store).execute("SHOW synchronous_commit").fetchone()[0] == "on"
    store.close()


def test_a_write_lock_held_too_long_elsewhere_is_an_error_not_a_wait(database_url):
    from reference.enclave.pg_store import WRITE_LOCK

    store = PostgresStore(database_url + "?options=" + quote("-c lock_timeout=300ms"))
    with psycopg.connect(database_url) as stuck:  # another instance, stalled inside a transaction
        stuck.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        began = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.put(KEY, b"v")
        assert time.monotonic() - began < 5
        assert store.get(KEY) is None  # reads take no lock and the session is still usable
    store.put(KEY, b"v")  # the lock is free again
    assert store.get(KEY) == b"v"
    store.close()


def test_instances_starting_together_create_the_table_once(database_url):
    with ThreadPoolExecutor(6) as pool:
        stores = list(pool.map(lambda _: PostgresStore(database_url), range(6)))
    stores[0].put(KEY, b"shared")
    assert all(store.get(KEY) == b"shared" for store in stores)
    for store in stores:
        store.close()


def _terminate_sessions(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as admin:
        return len(admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall())


def test_a_session_killed_while_idle_is_replaced_on_the_next_call(database_url):
    store = PostgresStore(database_url)
    store.put(KEY, b"v")
    assert _terminate_sessions(database_url) >= 1
    assert store.get(KEY) == b"v"  # a fresh session; nothing of this request had happened yet
    store.close()


def test_a_session_killed_mid_transaction_fails_the_transaction_and_writes_nothing(database_url):
    store = PostgresStore(database_url)
    store.put(KEY, b"before")
    with pytest.raises(StoreUnavailable):
        with store.transaction():
            store.put(KEY, b"during")
            _terminate_sessions(database_url)
            store.put(b"n" * 32, b"new")
    assert store.get(KEY) == b"before" and store.get(b"n" * 32) is None
    with store.transaction():
        store.put(KEY, b"after")
    assert store.get(KEY) == b"after"
    store.close()


def test_server_restart_is_a_clean_error_then_the_next_request_reconnects(postgres_cluster, database_url):
    enclave = Enclave(kv=PostgresStore(database_url), master_key=MASTER_KEY)
    account = call(enclave, {"operation": "serviceAccount:create", "options": {"metadata": {}}})["data"]
    get = {"operation": "serviceAccount:get", "auth": {"adminKey": account["adminKey"]}}
    postgres_cluster.stop()
    try:
        began = time.monotonic()
        with pytest.raises(StoreUnavailable):
            enclave.store.get(b"x" * 32)
        # The enclave answers, encrypted, and reveals nothing of the cause.
        reply = call(enclave, get)
        assert reply == {"success": False, "data": None,
                         "error": {"code": "internal_server_error", "message": "internal error"}}
        assert time.monotonic() - began < 15
    finally:
        postgres_cluster.start()
    assert call(enclave, get)["success"]
    rotated = call(enclave, {"operation": "serviceAccount:rotate", "auth": {"rotationCode": account["rotationCode"]}})
    assert rotated["success"]


def test_a_server_that_may_lose_commits_is_refused(postgres_cluster, database_url):
    from reference.enclave.pg_store import StoreNotDurable

    def fsync_of_new_sessions(expected: str) -> bool:
        with psycopg.connect(database_url) as probe:  # the reload reaches new sessions asynchronously
            return probe.execute("SHOW fsync").fetchone()[0] == expected

    with psycopg.connect(postgres_cluster.url(), autocommit=True) as admin:
        admin.execute("ALTER SYSTEM SET fsync = off")
        admin.execute("SELECT pg_reload_conf()")
        try:
            wait_until(lambda: fsync_of_new_sessions("off"))
            with pytest.raises(StoreNotDurable):
                PostgresStore(database_url)
        finally:
            admin.execute("ALTER SYSTEM RESET fsync")
            admin.execute("SELECT pg_reload_conf()")
            wait_until(lambda: fsync_of_new_sessions("on"))
