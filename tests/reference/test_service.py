"""The enclave's request loop, storage and service accounts, without sockets (spec §4, §6, §7)."""

import json
import os
from datetime import datetime, timezone

import pytest

from harness.protocol import envelope as client_envelope
from reference.enclave.service import Enclave
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
