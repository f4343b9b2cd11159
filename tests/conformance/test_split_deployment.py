"""The enclave as its own process behind the host front, joined by the socket transport (spec §2.4)."""

import socket
import struct
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import ROOT, ServerProcess, free_port
from tests.conformance.test_harness_against_reference import DEV_ATTESTATION, run_harness, verdicts

pytestmark = pytest.mark.server


@pytest.fixture
def split_vault(tmp_path):
    enclave_port, http_port = free_port(), free_port()
    enclave = subprocess.Popen([sys.executable, "-m", "reference.cli", "enclave", "--listen",
                                f"tcp:127.0.0.1:{enclave_port}", "--data-dir", str(tmp_path / "data")], cwd=ROOT)
    _wait_listening(enclave_port)
    host = ServerProcess([sys.executable, "-m", "reference.cli", "host", "--enclave", f"tcp:127.0.0.1:{enclave_port}",
                          "--port", str(http_port)], http_port, tmp_path / "data").start()
    yield host, enclave, enclave_port
    host.stop()
    enclave.terminate()
    enclave.wait(10)


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("enclave process did not listen")


def test_harness_passes_against_split_deployment(split_vault, tmp_path):
    host, _, _ = split_vault
    code, report, output = run_harness(host.url, tmp_path, "--strict", *DEV_ATTESTATION)
    assert code == 0, output
    assert all(v in ("OK", "INFORMATIONAL") for v in verdicts(report).values()), output


def test_bad_frames_close_one_connection_and_the_enclave_keeps_serving(split_vault):
    host, _, enclave_port = split_vault
    for junk in [b"\xff\xff" + b"x" * 10, struct.pack(">H", 3) + b"abc" + struct.pack(">I", 1 << 30), b"\x00"]:
        with socket.create_connection(("127.0.0.1", enclave_port)) as raw:
            raw.sendall(junk)
            raw.shutdown(socket.SHUT_WR)
            raw.settimeout(5)
            assert raw.recv(100) == b""  # closed without an answer
    assert httpx.get(host.url + "/api/v1/enclave").status_code == 200


def test_host_answers_503_when_the_enclave_is_gone(split_vault):
    host, enclave, _ = split_vault
    enclave.terminate()
    enclave.wait(10)
    response = httpx.post(host.url + "/api/v1/enclave", content=b"{}")
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "service_unavailable"
    assert "Traceback" not in response.text
