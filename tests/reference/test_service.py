"""The enclave's request loop, storage and service accounts, without sockets (spec §4, §6, §7)."""

import json
import os
import sqlite3
from datetime import datetime, timezone

import pytest

from harness.protocol import envelope as client_envelope
from reference.enclave.service import Enclave, MasterKeyMismatch
from reference.enclave.store import SqliteStore

MASTER_KEY = bytes(range(100, 132))


def make_enclave(path, master_key=MASTER_KEY, **kwargs):
    return Enclave(kv=SqliteStore(path), master_key=master_key, **kwargs)


def call(enclave, request: dict | bytes):
    plaintext = request if isinstance(request, bytes) else json.dumps(request).encode()
    secret = os.urandom(32)
    sealed = client_envelope.seal(enclave.public_key, plaintext, ephemeral_secret=secret, nonce=os.urandom(24))
    status, body = enclave.handle_envelope(sealed.to_bytes())
    assert status == 200, body
    return json.loads(client_envelope.open_envelope(client_envelope.Envelope.from_json(json.loads(body)), secret))


@pytest.fixture
def enclave(tmp_path):
    return make_enclave(tmp_path / "vault.db")


def test_static_key_survives_restart_and_needs_the_master_key(tmp_path):
    first = make_enclave(tmp_path / "db").public_key
    assert make_enclave(tmp_path / "db").public_key == first
    with pytest.raises(MasterKeyMismatch):  # another master key must not silently start a fresh Vault
        make_enclave(tmp_path / "db", master_key=bytes(32))


def test_database_holds_no_identifier_secret_or_plaintext(tmp_path):
    enclave = make_enclave(tmp_path / "db")
    account = call(enclave, {"operation": "serviceAccount:create", "options": {"metadata": {"team": "payments-xyz"}}})["data"]
    call(enclave, {"operation": "serviceAccount:rotate", "auth": {"rotationCode": account["rotationCode"]}})
    raw = b"".join((tmp_path / name).read_bytes() for name in os.listdir(tmp_path))
    for needle in (account["id"], account["adminKey"], account["rotationCode"], "payments-xyz", "metadata",
                   account["id"].replace("-", "")):
        assert needle.encode() not in raw, needle
    rows = sqlite3.connect(tmp_path / "db").execute("SELECT k FROM entries").fetchall()
    assert rows and all(len(k) == 32 for (k,) in rows)  # HMAC-SHA256 addresses only


def test_record_moved_to_another_address_does_not_open(tmp_path):
    enclave = make_enclave(tmp_path / "db")
    a = call(enclave, {"operation": "serviceAccount:create", "options": {"metadata": {}}})["data"]
    b = call(enclave, {"operation": "serviceAccount:create", "options": {"metadata": {}}})["data"]
    db = sqlite3.connect(tmp_path / "db", isolation_level=None)
    address_a = enclave.store.address("service-account", a["id"])
    address_b = enclave.store.address("service-account", b["id"])
    (blob_a,) = db.execute("SELECT v FROM entries WHERE k = ?", (address_a,)).fetchone()
    db.execute("UPDATE entries SET v = ? WHERE k = ?", (blob_a, address_b))
    reply = call(enclave, {"operation": "serviceAccount:get", "auth": {"adminKey": b["adminKey"]}})
    assert reply["success"] is False and reply["error"]["code"] == "internal_server_error"
    assert a["id"] not in json.dumps(reply)


def test_rotation_rolls_back_completely_when_interrupted(tmp_path, monkeypatch):
    enclave = make_enclave(tmp_path / "db")
    account = call(enclave, {"operation": "serviceAccount:create", "options": {"metadata": {}}})["data"]
    from reference.enclave.operations import service_accounts

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
    # Nothing changed: the old credentials still work, and rotation can be retried.
    assert call(enclave, {"operation": "serviceAccount:get", "auth": {"adminKey": account["adminKey"]}})["success"]
    assert call(enclave, {"operation": "serviceAccount:rotate", "auth": {"rotationCode": account["rotationCode"]}})["success"]
    assert service_accounts  # the module under test was loaded


def test_operation_errors_are_encrypted_with_codes(enclave):
    assert call(enclave, b"not json")["error"]["code"] == "serialization_error"
    assert call(enclave, {"operation": "nope"})["error"]["code"] == "unknown_operation"
    assert call(enclave, {"operation": "serviceAccount:get"})["error"]["code"] == "auth_missing"
    assert call(enclave, {"operation": "serviceAccount:get", "auth": {"sessionToken": "x"}})["error"]["code"] == "auth_unsupported_method"
    assert call(enclave, {"operation": "serviceAccount:create", "options": {"metadata": {"a": 1}}})["error"]["code"] == "invalid_input"


def test_unexpected_bug_is_an_opaque_encrypted_error(tmp_path):
    def broken(ctx, request):
        raise KeyError("secret-detail")

    enclave = make_enclave(tmp_path / "db", operations={"boom": broken})
    reply = call(enclave, {"operation": "boom"})
    assert reply == {"success": False, "data": None, "error": {"code": "internal_server_error", "message": "internal error"}}


def test_ping_uses_the_injected_clock(tmp_path):
    moment = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    enclave = make_enclave(tmp_path / "db", now=lambda: moment)
    reply = call(enclave, {"operation": "ping", "options": {"message": "hi"}})
    assert reply["data"] == {"timestamp": int(moment.timestamp() * 1000), "pong": "hi"}


def test_envelope_errors_are_plain_json_4xx(enclave):
    status, body = enclave.handle_envelope(b"[]")
    assert status == 400
    assert json.loads(body) == {"error": {"message": "request body must be a JSON object", "status": 400, "type": "invalid_json"}}


@pytest.mark.parametrize("plaintext", [
    b'{"operation":"ping","operation":"serviceAccount:create"}',
    b'{"operation":"ping","options":{"message":"a","message":"b"}}',
    b'{"operation":"ping","options":{"message":"time 12:00"},"options":{}}',  # a colon inside a string too
])
def test_duplicated_member_names_in_the_plaintext_are_refused(enclave, plaintext):
    reply = call(enclave, plaintext)
    assert reply["success"] is False and reply["error"]["code"] == "serialization_error", reply
