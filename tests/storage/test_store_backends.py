"""The store interface (spec §7.2) and the enclave's storage behaviour (§6.4, §7), on SQLite and on
PostgreSQL alike: every test here runs once per backend."""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.protocol import envelope as client_envelope
from reference.enclave.service import Enclave, MasterKeyMismatch

MASTER_KEY = bytes(range(100, 132))
# Long enough between a transaction's read and its write that racing transactions overlap
# whenever the store fails to serialise them.
RACE_WINDOW_SECONDS = 0.01


def call(enclave, request: dict | bytes):
    plaintext = request if isinstance(request, bytes) else json.dumps(request).encode()
    secret = os.urandom(32)
    sealed = client_envelope.seal(enclave.public_key, plaintext, ephemeral_secret=secret, nonce=os.urandom(24))
    status, body = enclave.handle_envelope(sealed.to_bytes())
    assert status == 200, body
    return json.loads(client_envelope.open_envelope(client_envelope.Envelope.from_json(json.loads(body)), secret))


# ---- the key-value interface ---------------------------------------------------------------

def test_get_put_delete(backend):
    store = backend.open()
    assert store.get(b"k" * 32) is None
    store.put(b"k" * 32, b"\x00value\xff")
    assert store.get(b"k" * 32) == b"\x00value\xff"
    store.put(b"k" * 32, b"second")
    assert store.get(b"k" * 32) == b"second"
    store.delete(b"k" * 32)
    assert store.get(b"k" * 32) is None
    store.delete(b"k" * 32)  # deleting what is absent is no error


def test_group_lists_its_entries_in_insertion_order(backend):
    store = backend.open()
    keys = [os.urandom(32) for _ in range(25)]  # random keys: their byte order is not the write order
    for n, key in enumerate(keys):
        store.put(key, b"v%d" % n, b"group-a")
        store.put(os.urandom(32), b"other", b"group-b" if n % 2 else None)
    assert store.group(b"group-a") == [(key, b"v%d" % n) for n, key in enumerate(keys)]
    assert store.group(b"group-none") == []


def test_upsert_replaces_the_value_and_keeps_group_and_position(backend):
    store = backend.open()
    first, second = os.urandom(32), os.urandom(32)
    store.put(first, b"1", b"g")
    store.put(second, b"2", b"g")
    store.put(first, b"1-new")  # no group given: the entry stays in its group, first
    store.put(second, b"2-new", b"elsewhere")
    assert store.group(b"g") == [(first, b"1-new"), (second, b"2-new")]
    assert store.group(b"elsewhere") == []


def test_transaction_commits_all_or_nothing(backend):
    store = backend.open()
    store.put(b"a" * 32, b"old")
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.put(b"a" * 32, b"new")
            store.put(b"b" * 32, b"new", b"g")
            assert store.get(b"a" * 32) == b"new"  # a transaction reads its own writes
            raise RuntimeError("interrupted")
    assert (store.get(b"a" * 32), store.get(b"b" * 32), store.group(b"g")) == (b"old", None, [])
    with store.transaction():
        store.delete(b"a" * 32)
        store.put(b"b" * 32, b"new", b"g")
    assert (store.get(b"a" * 32), store.group(b"g")) == (None, [(b"b" * 32, b"new")])


def test_another_instance_sees_a_transaction_only_once_committed(backend):
    writer, reader = backend.open(), backend.open()
    writer.put(b"k" * 32, b"before")
    with writer.transaction():
        writer.put(b"k" * 32, b"after")
        writer.put(b"n" * 32, b"new")
        assert (reader.get(b"k" * 32), reader.get(b"n" * 32)) == (b"before", None)
    assert (reader.get(b"k" * 32), reader.get(b"n" * 32)) == (b"after", b"new")


def _spread(stores, count, work):
    """``count`` calls of ``work(store)`` from as many threads, alternating over ``stores``."""
    start = threading.Barrier(count)

    def one(n):
        start.wait()
        return work(stores[n % len(stores)])

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_transactions_of_several_instances_do_not_lose_updates(backend):
    stores = [backend.open(), backend.open()]
    stores[0].put(b"counter".ljust(32, b"."), b"0")

    def increment(store):
        with store.transaction():
            value = int(store.get(b"counter".ljust(32, b".")))
            time.sleep(RACE_WINDOW_SECONDS)
            store.put(b"counter".ljust(32, b"."), str(value + 1).encode())

    _spread(stores, 16, increment)
    assert stores[1].get(b"counter".ljust(32, b".")) == b"16"


def test_a_secret_consumed_in_a_transaction_is_consumed_once(backend):
    """The shape of a rotation (spec §6.4): look the code up, delete it, write its successor."""
    stores = [backend.open(), backend.open()]
    stores[0].put(b"code".ljust(32, b"."), b"account-1")

    def consume(store):
        with store.transaction():
            if store.get(b"code".ljust(32, b".")) is None:
                return None
            time.sleep(RACE_WINDOW_SECONDS)
            store.delete(b"code".ljust(32, b"."))
            successor = os.urandom(32)
            store.put(successor, b"account-1", b"successors")
            return successor

    winners = [s for s in _spread(stores, 12, consume) if s is not None]
    assert len(winners) == 1
    assert stores[1].group(b"successors") == [(winners[0], b"account-1")]


def test_one_instance_serves_many_threads(backend):
    store = backend.open()

    def writer(n):
        key = n.to_bytes(32, "big")
        for round_ in range(10):
            with store.transaction():
                store.put(key, b"%d" % round_, b"threads")
            assert store.get(key) == b"%d" % round_
        return key

    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(writer, range(8)))
    assert {k: v for k, v in store.group(b"threads")} == {k: b"9" for k in keys}


# ---- the enclave on this backend -----------------------------------------------------------

def test_static_key_survives_restart_and_needs_the_master_key(backend):
    first = Enclave(kv=backend.open(), master_key=MASTER_KEY).public_key
    assert Enclave(kv=backend.open(), master_key=MASTER_KEY).public_key == first
    with pytest.raises(MasterKeyMismatch):  # another master key must not silently start a fresh Vault
        Enclave(kv=backend.open(), master_key=bytes(32))


def test_database_holds_no_identifier_secret_or_plaintext(backend):
    enclave = Enclave(kv=backend.open(), master_key=MASTER_KEY)
    account = call(enclave, {"operation": "serviceAccount:create", "options": {"metadata": {"team": "payments-xyz"}}})["data"]
    rotated = call(enclave, {"operation": "serviceAccount:rotate", "auth": {"rotationCode": account["rotationCode"]}})["data"]
    raw = backend.raw_bytes()
    for needle in (account["id"], account["adminKey"], account["rotationCode"], rotated["newAdminKey"],
                   rotated["newRotationCode"], "payments-xyz", "metadata", account["id"].replace("-", "")):
        assert needle.encode() not in raw, needle
    rows = backend.rows()
    assert rows and all(len(k) == 32 for k, _, _ in rows)  # HMAC-SHA256 addresses only


def test_record_moved_to_another_address_does_not_open(backend):
    enclave = Enclave(kv=backend.open(), master_key=MASTER_KEY)
    a = call(enclave, {"operation": "serviceAccount:create", "options": {"metadata": {}}})["data"]
    b = call(enclave, {"operation": "serviceAccount:create", "options": {"metadata": {}}})["data"]
    address_a = enclave.store.address("service-account", a["id"])
    address_b = enclave.store.address("service-account", b["id"])
    (blob_a,) = [v for k, _, v in backend.rows() if k == address_a]
    backend.overwrite(address_b, blob_a)
    reply = call(enclave, {"operation": "serviceAccount:get", "auth": {"adminKey": b["adminKey"]}})
    assert reply["success"] is False and reply["error"]["code"] == "internal_server_error"
    assert a["id"] not in json.dumps(reply)


def test_rotation_rolls_back_completely_when_interrupted(backend, monkeypatch):
    enclave = Enclave(kv=backend.open(), master_key=MASTER_KEY)
    account = call(enclave, {"operation": "serviceAccount:create", "options": {"metadata": {}}})["data"]
    rows_before = backend.rows()
    real_put = enclave.store.put
    calls = {"n": 0}

    def failing_put(address, record, group=None):
        calls["n"] += 1
        if calls["n"] == 3:  # after the new index entries, before the account record
            raise OSError("disk full")
        return real_put(address, record, group)

    monkeypatch.setattr(enclave.store, "put", failing_put)
    reply = call(enclave, {"operation": "serviceAccount:rotate", "auth": {"rotationCode": account["rotationCode"]}})
    assert reply["error"]["code"] == "internal_server_error"
    monkeypatch.setattr(enclave.store, "put", real_put)
    assert backend.rows() == rows_before  # not one row written or deleted
    assert call(enclave, {"operation": "serviceAccount:get", "auth": {"adminKey": account["adminKey"]}})["success"]
    assert call(enclave, {"operation": "serviceAccount:rotate", "auth": {"rotationCode": account["rotationCode"]}})["success"]


def test_concurrent_rotations_on_two_instances_succeed_once(backend, monkeypatch):
    """Spec 6.4: concurrent rotations with one code succeed at most once, and exactly one new admin
    key works afterwards, also when the rotations reach different instances on one database."""
    instances = [Enclave(kv=backend.open(), master_key=MASTER_KEY) for _ in range(2)]
    account = call(instances[0], {"operation": "serviceAccount:create", "options": {"metadata": {}}})["data"]
    # Widen the window between the code's lookup and the writes, as a slow request would.
    from reference.enclave.operations import service_accounts

    real_lookup = service_accounts.account_by_rotation_code

    def slow_lookup(ctx, auth):
        found = real_lookup(ctx, auth)
        time.sleep(RACE_WINDOW_SECONDS)
        return found

    monkeypatch.setattr(service_accounts, "account_by_rotation_code", slow_lookup)
    rotate = {"operation": "serviceAccount:rotate", "auth": {"rotationCode": account["rotationCode"]}}
    replies = _spread(instances, 12, lambda enclave: call(enclave, rotate))
    winners = [r["data"] for r in replies if r["success"]]
    assert len(winners) == 1, replies
    assert {r["error"]["code"] for r in replies if not r["success"]} == {"auth_invalid_rotation_code"}
    for enclave in instances:
        new_key = call(enclave, {"operation": "serviceAccount:get", "auth": {"adminKey": winners[0]["newAdminKey"]}})
        assert new_key["success"] and new_key["data"]["id"] == account["id"]
        old_key = call(enclave, {"operation": "serviceAccount:get", "auth": {"adminKey": account["adminKey"]}})
        assert old_key["error"]["code"] == "auth_invalid_admin_key"
