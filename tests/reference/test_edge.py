"""Slow, incomplete and ambiguous clients at the HTTP edge, and a stalled enclave behind the host
(docs/spec/02-endpoints.md 2.6): each gets its documented answer or a closed connection, never a
hang, and the Vault keeps serving. Raw sockets: an HTTP library would not send these requests.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from harness.protocol import envelope as client_envelope
from tests.conftest import ROOT, ServerProcess, free_port, start_reference

pytestmark = pytest.mark.server

TIMEOUT = "1"  # --request-timeout for these servers: the tests wait about that long


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    server = start_reference(tmp_path_factory.mktemp("edge"), "--insecure-dev-master-key-file",
                             "--request-timeout", TIMEOUT)
    yield server
    output = server.stop()
    assert "Traceback" not in output, output


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def read_all(sock: socket.socket, limit: float = 10) -> bytes:
    sock.settimeout(limit)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, socket.timeout):
        pass
    return b"".join(chunks)


def sealed(public_key: bytes, request: dict) -> tuple[bytes, bytes]:
    secret = os.urandom(32)
    env = client_envelope.seal(public_key, json.dumps(request).encode(), ephemeral_secret=secret, nonce=os.urandom(24))
    return env.to_bytes(), secret


def post(url: str, body: bytes) -> httpx.Response:
    return httpx.post(url + "/api/v1/enclave", content=body, timeout=10)


def public_key(url: str) -> bytes:
    return bytes.fromhex(httpx.get(url + "/api/v1/enclave", timeout=10).json()["publicKey"])


def operation(url: str, request: dict) -> dict:
    body, secret = sealed(public_key(url), request)
    answer = post(url, body)
    assert answer.status_code == 200, answer.text
    reply = client_envelope.open_envelope(client_envelope.Envelope.from_json(answer.json()), secret)
    return json.loads(reply)


def test_a_connection_that_never_sends_a_request_is_closed(vault):
    sock = connect(vault.url)
    started = time.monotonic()
    answer = read_all(sock)
    assert time.monotonic() - started < 5
    assert answer.startswith(b"HTTP/1.1 408 ") and b'"type": "request_timeout"' in answer, answer


def test_a_head_sent_slowly_is_cut_off_at_the_deadline(vault):
    sock = connect(vault.url)
    started = time.monotonic()
    try:
        for byte in b"GET /health HTTP/1.1\r\nHost: x\r\n":
            sock.send(bytes([byte]))
            time.sleep(0.1)
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = read_all(sock)
    assert time.monotonic() - started < 6 and answer.startswith(b"HTTP/1.1 408 "), answer
    assert httpx.get(vault.url + "/health").status_code == 200


def test_an_incomplete_request_is_never_run(vault):
    account = operation(vault.url, {"operation": "serviceAccount:create", "options": {}})["data"]
    body, _ = sealed(public_key(vault.url), {"operation": "serviceAccount:rotate",
                                             "auth": {"rotationCode": account["rotationCode"]}})
    sock = connect(vault.url)
    sock.sendall(b"POST /api/v1/enclave HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % (len(body) + 10) + body)
    sock.shutdown(socket.SHUT_WR)  # the client is gone, ten bytes short
    read_all(sock, 3)
    sock.close()
    time.sleep(0.2)
    still = operation(vault.url, {"operation": "serviceAccount:get", "auth": {"adminKey": account["adminKey"]}})
    assert still["success"] is True, still  # the rotation did not run: the old admin key works


def test_content_length_with_transfer_encoding_is_refused_and_closed(vault):
    sock = connect(vault.url)
    sock.sendall(b"POST /api/v1/enclave HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    answer = read_all(sock)  # returns only when the server closes
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert answer.count(b"HTTP/1.1") == 1


def test_an_oversized_body_is_read_before_its_413_so_the_client_sees_it(vault):
    """A client (or a proxy) still sending when the connection closes gets a reset and may lose
    the answer: a body up to the drain bound is read and discarded first, then 413 and close."""
    sock = connect(vault.url)
    sock.sendall(b"POST /api/v1/enclave HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (4 << 20))
    sock.sendall(b"{" * (4 << 20))  # a full send: nothing is lost to a reset
    answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413 ") and b"connection: close" in answer.lower(), answer


def test_a_body_declared_beyond_the_drain_bound_is_refused_at_once(vault):
    sock = connect(vault.url)
    sock.sendall(b"POST /api/v1/enclave HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{" % (1 << 30))
    started = time.monotonic()
    answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413 ") and time.monotonic() - started < 0.9, answer


@pytest.mark.parametrize("writes", [1, 64])
def test_the_head_limit_does_not_depend_on_how_the_bytes_arrive(vault, writes):
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (64 * 1024) + b"\r\n\r\n"
    sock = connect(vault.url)
    step = -(-len(head) // writes)
    try:
        for i in range(0, len(head), step):
            sock.sendall(head[i:i + step])
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431 ") or answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"200 OK" not in answer


def test_descriptor_exhaustion_does_not_stop_the_vault(tmp_path):
    """A low descriptor limit and more idle connections than it allows: the cap refuses the
    excess instead of failing accept() (no EMFILE flood), and once the deadline frees them the
    Vault answers again."""
    port = free_port()
    argv = [sys.executable, "-m", "reference.cli", "serve", "--port", str(port), "--data-dir", str(tmp_path / "d"),
            "--insecure-dev-master-key-file", "--request-timeout", TIMEOUT]

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    server = ServerProcess(argv, port, tmp_path).start(preexec_fn=low_limit)
    try:
        idle = []
        for _ in range(400):
            try:
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                break
        time.sleep(float(TIMEOUT) + 1.5)
        assert httpx.get(server.url + "/health", timeout=5).status_code == 200
        for sock in idle:
            sock.close()
    finally:
        output = server.stop()
    assert "Too many open files" not in output and "Traceback" not in output, output[-3000:]


# --- a stalled enclave behind the host ------------------------------------------------------------


@pytest.fixture
def split(tmp_path):
    enclave_port, http_port = free_port(), free_port()
    enclave_argv = [sys.executable, "-m", "reference.cli", "enclave", "--listen", f"tcp:127.0.0.1:{enclave_port}",
                    "--data-dir", str(tmp_path / "d"), "--insecure-dev-master-key-file"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def start_enclave():
        process = subprocess.Popen(enclave_argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", enclave_port), timeout=1).close()
                return process
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "enclave did not start"
                time.sleep(0.1)

    processes = {"enclave": start_enclave()}
    host = ServerProcess([sys.executable, "-m", "reference.cli", "host", "--enclave", f"tcp:127.0.0.1:{enclave_port}",
                          "--port", str(http_port), "--enclave-timeout", "1"], http_port, tmp_path).start()
    yield host, processes, start_enclave
    host.stop()
    for process in processes.values():
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
            process.wait()


def test_a_stalled_enclave_gets_503_and_recovers(split):
    host, processes, _ = split
    assert operation(host.url, {"operation": "ping", "options": {"message": "a"}})["success"]
    key = public_key(host.url)
    os.kill(processes["enclave"].pid, signal.SIGSTOP)
    started = time.monotonic()
    body, _ = sealed(key, {"operation": "ping", "options": {"message": "b"}})
    answer = post(host.url, body)
    assert answer.status_code == 503 and answer.json()["error"]["type"] == "service_unavailable"
    assert time.monotonic() - started < 5
    os.kill(processes["enclave"].pid, signal.SIGCONT)
    time.sleep(0.2)
    assert operation(host.url, {"operation": "ping", "options": {"message": "c"}})["data"]["pong"] == "c"


def test_the_first_request_after_an_enclave_restart_succeeds(split):
    host, processes, start_enclave = split
    assert operation(host.url, {"operation": "ping", "options": {"message": "a"}})["success"]
    processes["enclave"].terminate()
    processes["enclave"].wait(10)
    processes["enclave"] = start_enclave()
    time.sleep(0.2)
    assert operation(host.url, {"operation": "ping", "options": {"message": "after"}})["data"]["pong"] == "after"
