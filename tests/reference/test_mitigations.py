"""The reference's opt-in mitigations of spec 10.7, sans-IO: the replay window, the echo of a
caller's responseBinding, and the key epoch named in enclave:attest."""

from __future__ import annotations

import json
import os

from harness.protocol import envelope as client_envelope
from tests.reference.test_service import call, make_enclave

BINDING = os.urandom(32).hex()


def _post_twice(enclave, request: dict):
    secret = os.urandom(32)
    sealed = client_envelope.seal(enclave.public_key, json.dumps(request).encode(), ephemeral_secret=secret,
                                  nonce=os.urandom(24))
    replies = []
    for _ in range(2):
        status, body = enclave.handle_envelope(sealed.to_bytes())
        assert status == 200
        replies.append(json.loads(client_envelope.open_envelope(
            client_envelope.Envelope.from_json(json.loads(body)), secret)))
    return replies


def test_without_a_window_a_replayed_request_runs_again(tmp_path):
    first, second = _post_twice(make_enclave(tmp_path / "db"), {"operation": "serviceAccount:create"})
    assert first["success"] and second["success"] and first["data"]["id"] != second["data"]["id"]


def test_the_window_refuses_a_replay_and_forgets_beyond_its_size(tmp_path):
    enclave = make_enclave(tmp_path / "db", replay_window=2)
    first, second = _post_twice(enclave, {"operation": "serviceAccount:create"})
    assert first["success"] and second == {"success": False, "data": None, "error": {
        "code": "replayed_request", "message": "this request was already received (replay window)"}}
    # Three newer requests push the first key out of a window of two: it would run again.
    secret = os.urandom(32)
    sealed = client_envelope.seal(enclave.public_key, b'{"operation": "ping"}', ephemeral_secret=secret,
                                  nonce=os.urandom(24))
    assert enclave.handle_envelope(sealed.to_bytes())[0] == 200
    for _ in range(2):
        call(enclave, {"operation": "ping"})
    status, body = enclave.handle_envelope(sealed.to_bytes())
    reply = json.loads(client_envelope.open_envelope(client_envelope.Envelope.from_json(json.loads(body)), secret))
    assert reply["success"] is True


def test_a_response_binding_is_echoed_in_successes_and_failures(tmp_path):
    enclave = make_enclave(tmp_path / "db")
    ok = call(enclave, {"operation": "ping", "options": {"message": "x"}, "responseBinding": BINDING})
    refused = call(enclave, {"operation": "nope", "responseBinding": BINDING})
    assert ok["responseBinding"] == BINDING and ok["success"] is True
    assert refused["responseBinding"] == BINDING and refused["error"]["code"] == "unknown_operation"
    assert set(call(enclave, {"operation": "ping"})) == {"success", "data", "error"}  # not asked, not added


def test_a_malformed_binding_is_invalid_input_and_not_echoed(tmp_path):
    enclave = make_enclave(tmp_path / "db")
    for bad in (BINDING.upper(), BINDING[:-2], 5, None, "zz" * 32):
        reply = call(enclave, {"operation": "ping", "responseBinding": bad})
        assert reply["error"]["code"] == "invalid_input" and "responseBinding" not in reply, bad


def test_the_echo_can_be_switched_off(tmp_path):
    enclave = make_enclave(tmp_path / "db", response_binding=False)
    assert "responseBinding" not in call(enclave, {"operation": "ping", "responseBinding": BINDING})


def test_enclave_attest_names_the_key_epoch(tmp_path):
    from reference.enclave.nsm import SimulatedNsm

    for epoch in (1, 7):
        enclave = make_enclave(tmp_path / f"db{epoch}", nsm=SimulatedNsm(tmp_path / "nsm"), static_key_epoch=epoch)
        assert call(enclave, {"operation": "enclave:attest"})["data"]["keyEpoch"] == epoch
