"""KMS faults at boot, through the command line with an explicit ``--kms-key-id`` (spec 11).

tests/reference/test_kms_boot.py covers the embedded mock KMS denying a wrong PCR0. Here the
KMS is an external endpoint: one that refuses connections, one that accepts and never answers,
one that denies the key to this enclave's measurements, and no credentials at all. Each must
stop the Vault with exit status 1 and one line naming the cause, no traceback, within its
timeouts, and nothing may listen on the port.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from harness.kms.server import make_server
from harness.kms.service import DEFAULT_PRINCIPAL, KmsConfig, MockKms
from tests.conftest import ROOT, free_port

pytestmark = [pytest.mark.server, pytest.mark.faults]

KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
FOREIGN_PCR0 = bytes(48 * [0xAB])


def boot(data_dir, endpoint: str, key_id: str = KEY_ARN, env_change: dict | None = None,
         timeout: float = 90) -> tuple[subprocess.CompletedProcess, float, int]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), **CREDENTIALS, **(env_change or {})}
    env = {k: v for k, v in env.items() if v is not None}
    began = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "reference.cli", "serve", "--port", str(port), "--data-dir", str(data_dir),
         "--kms-key-id", key_id, "--kms-endpoint", endpoint, "--kms-region", "us-east-1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return completed, time.monotonic() - began, port


def assert_one_line_refusal(completed: subprocess.CompletedProcess, port: int, *needles: str) -> str:
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "Traceback" not in completed.stderr + completed.stdout, completed.stderr
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vault-reference: cannot start:"), completed.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # it never served
    return lines[0]


def test_kms_refusing_connections_stops_the_vault(tmp_path):
    closed = free_port()  # nothing listens there
    completed, took, port = boot(tmp_path / "data", f"http://127.0.0.1:{closed}")
    line = assert_one_line_refusal(completed, port, "KMS unreachable", f"127.0.0.1:{closed}")
    print(f"refused connection: {took:.1f}s: {line}")


@pytest.mark.long  # ~30 s: the reference's 10 s read timeout, retried
def test_kms_that_never_answers_stops_the_vault_within_its_timeouts(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts (the kernel completes the handshake), never answers
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold():
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                pass

    threading.Thread(target=hold, daemon=True).start()
    try:
        completed, took, port = boot(tmp_path / "data", f"http://127.0.0.1:{silent.getsockname()[1]}")
    finally:
        stop.set()
        for conn in held:
            conn.close()
        silent.close()
    line = assert_one_line_refusal(completed, port, "KMS unreachable")
    assert took < 60, took  # 10 s read timeout, two attempts
    print(f"silent endpoint: {took:.1f}s: {line}")


def _locked_policy(pcr0: bytes) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "EnclaveReadsPolicy", "Effect": "Allow", "Principal": {"AWS": DEFAULT_PRINCIPAL},
         "Action": ["kms:GetKeyPolicy", "kms:DescribeKey"], "Resource": "*"},
        {"Sid": "EnclaveOnly", "Effect": "Allow", "Principal": {"AWS": DEFAULT_PRINCIPAL},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
         "Condition": {"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": pcr0.hex()}}}]})


@pytest.fixture
def external_kms(tmp_path):
    from reference.enclave.nsm import SimulatedNsm  # test side: the dev root the mock must trust

    data_dir = tmp_path / "data"
    root = SimulatedNsm(data_dir / "nsm").root_pem()  # the PKI the reference will load from data_dir
    server = make_server(MockKms(KmsConfig(attestation_roots=[root])))
    server.start_in_thread()
    yield server, data_dir
    server.shutdown()
    server.server_close()


def test_kms_denying_this_enclave_stops_the_vault(external_kms):
    from reference.enclave.kms_client import Boto3KmsClient

    server, data_dir = external_kms
    admin = Boto3KmsClient(region="us-east-1", endpoint_url=server.url, access_key_id="test",
                           secret_access_key="test")
    arn = admin.create_key(_locked_policy(FOREIGN_PCR0), "a key for another enclave image")
    completed, took, port = boot(data_dir, server.url, key_id=arn)
    line = assert_one_line_refusal(completed, port, "AccessDeniedException")
    assert not (data_dir / "master.key").exists()
    print(f"denied: {took:.1f}s: {line}")


def test_kms_without_credentials_stops_the_vault(external_kms, tmp_path):
    server, data_dir = external_kms
    completed, took, port = boot(data_dir, server.url, env_change={
        "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None,
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true"})
    assert_one_line_refusal(completed, port, "no AWS credentials")
