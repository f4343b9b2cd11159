"""Clock skew between a client and the enclave (spec 13.1, 13.4, 13.7; 8.3, 8.5, 8.6.7).

The reference runs under libfaketime, its whole clock an hour (or minutes) off the client's.
Tokens: the enclave's clock decides. An access token made to expire 2 s from the enclave's now
works, then is refused, whatever the client's clock says; so does a signed token's ``exp``
(its ``iat`` is the client's time and is not checked, 13.7). Attestation: a document carries the
enclave's time; the harness's verifier measures freshness from the verification time its caller
gives (8.5.3): at the enclave's time it passes, at a client's clock two hours ahead it is
``policy-stale`` (8.6.7), and at a client's clock behind a fresh enclave the leaf is not yet valid
(``cert-not-yet-valid``, 8.6.5, met before the policy group).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness.attestation.errors import AttestationError, ErrorCode
from harness.attestation.verifier import Expectations, verify
from harness.protocol.client import VaultClient
from harness.suites.tokens import signed_token
from tests.conftest import ServerProcess, free_port

pytestmark = [pytest.mark.server, pytest.mark.faults]

LIBFAKETIME = [Path(p) for p in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                                 "/usr/lib/faketime/libfaketime.so.1")]
TOKEN_LIFETIME = 2.0
HOUR = 3600


def _libfaketime() -> Path:
    found = next((p for p in LIBFAKETIME if p.exists()), None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("libfaketime is required under CI (the faketime package)")
        pytest.skip("libfaketime is not installed (the faketime package)")
    return found


def start_skewed(data_dir: Path, offset_seconds: int) -> ServerProcess:
    """A reference whose clock (wall clock only) runs ``offset_seconds`` off the client's."""
    port = free_port()
    argv = [sys.executable, "-m", "reference.cli", "serve", "--port", str(port), "--data-dir", str(data_dir),
            "--insecure-dev-master-key-file"]
    server = ServerProcess(argv, port, data_dir)
    saved = dict(os.environ)
    os.environ.update(LD_PRELOAD=str(_libfaketime()), FAKETIME=f"{offset_seconds:+d}",
                      FAKETIME_DONT_FAKE_MONOTONIC="1", FAKETIME_NO_CACHE="1")
    try:
        return server.start()  # ServerProcess passes os.environ on
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(params=[-HOUR, HOUR], ids=["enclave-an-hour-behind", "enclave-an-hour-ahead"])
def skewed(request, tmp_path):
    server = start_skewed(tmp_path / "data", request.param)
    yield server, request.param
    output = server.stop()
    assert "Traceback" not in output, output


def enclave_now(client: VaultClient) -> float:
    pong = client.call("ping", options={"message": "time"})
    assert pong.ok, pong.reply
    return pong.data["timestamp"] / 1000


def rfc3339(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_the_enclave_clock_decides_token_expiry(skewed):
    server, offset = skewed
    client = VaultClient(server.url, timeout=15)
    now = enclave_now(client)
    assert abs(now - time.time() - offset) < 60, "the enclave's clock is not skewed"
    account = client.call("serviceAccount:create", options={"metadata": {}}).data
    admin = {"adminKey": account["adminKey"]}
    address = client.call("eoa:create", auth=admin, options={"metadata": {}}).data["address"]
    sign = {"from": address, "message": "skew"}

    # An expiry the client's clock calls 10 minutes ahead: in the enclave's past when it runs ahead.
    by_client_clock = client.call("accessToken:create", auth=admin, options={
        "policies": [{"type": "eoa:signMessage"}], "expiresAt": rfc3339(time.time() + 600)})
    if offset > 0:
        assert by_client_clock.error_code == "invalid_input", by_client_clock.reply
    else:
        assert by_client_clock.ok, by_client_clock.reply

    now = enclave_now(client)
    token = client.call("accessToken:create", auth=admin, options={
        "policies": [{"type": "eoa:signMessage"}], "expiresAt": rfc3339(now + TOKEN_LIFETIME)})
    assert token.ok, token.reply  # the client's clock calls it an hour off either way
    base = token.data["accessToken"]
    # A signed token: exp from the enclave's clock, iat the client's (13.7 does not check iat).
    sat = signed_token(client.enclave_public_key, base, [{"type": "eoa:signMessage"}],
                       exp=int(now + TOKEN_LIFETIME))
    assert client.call("eoa:signMessage", auth={"accessToken": base}, options=sign).ok
    assert client.call("eoa:signMessage", auth={"accessToken": sat}, options=sign).ok

    while enclave_now(client) < now + TOKEN_LIFETIME + 0.2:
        time.sleep(0.25)
    for credential in (base, sat):
        expired = client.call("eoa:signMessage", auth={"accessToken": credential}, options=sign)
        assert expired.error_code == "auth_invalid_access_token", expired.reply
    assert client.call("eoa:signMessage", auth=admin, options=sign).ok  # the account itself is fine


def _document(server: ServerProcess) -> tuple[bytes, bytes, bytes, bytes]:
    nonce = os.urandom(16)
    answer = httpx.get(server.url + "/api/v1/enclave/attestation", params={"nonce": nonce.hex()}, timeout=15).json()
    root = httpx.get(server.url + "/api/v1/enclave/attestation/dev-root", timeout=15).json()["rootPem"].encode()
    return base64.b64decode(answer["attestationDocument"]), bytes.fromhex(answer["publicKey"]), nonce, root


def _verdict(document: bytes, root: bytes, at: dt.datetime, nonce: bytes, public_key: bytes) -> str:
    try:
        verify(document, roots=[root], at=at, expect=Expectations(nonce=nonce, public_key=public_key))
    except AttestationError as error:
        return error.code.value if isinstance(error.code, ErrorCode) else str(error.code)
    return "ok"


@pytest.mark.parametrize("offset", [-2 * HOUR, 10 * 60], ids=["enclave-2h-behind", "enclave-10min-ahead"])
def test_documents_carry_the_enclave_time_and_the_verifier_judges_at_its_callers(offset, tmp_path):
    server = start_skewed(tmp_path / "data", offset)
    try:
        document, public_key, nonce, root = _document(server)
        client = VaultClient(server.url, timeout=15)
        enclave = enclave_now(client)
    finally:
        output = server.stop()
    assert "Traceback" not in output, output
    # The document's timestamp is the enclave's clock, not the client's.
    stamped = verify(document, roots=[root], at=dt.datetime.fromtimestamp(enclave, dt.timezone.utc),
                     expect=Expectations(nonce=nonce, public_key=public_key)).timestamp_ms / 1000
    assert abs(stamped - enclave) < 10 and abs(stamped - time.time() - offset) < 60

    at_stamp = dt.datetime.fromtimestamp(stamped, dt.timezone.utc)
    window = dt.timedelta(minutes=5)
    assert _verdict(document, root, at_stamp + window, nonce, public_key) == "ok"
    assert _verdict(document, root, at_stamp + window + dt.timedelta(milliseconds=1), nonce,
                    public_key) == "policy-stale"
    # The client's own clock, as the harness's attestation checks use it:
    by_client_clock = _verdict(document, root, dt.datetime.now(dt.timezone.utc), nonce, public_key)
    assert by_client_clock == ("policy-stale" if offset < 0 else "cert-not-yet-valid"), by_client_clock
