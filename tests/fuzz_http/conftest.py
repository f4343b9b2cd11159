"""One reference server process for the HTTP fuzzer, with what the resource checks need: its pid,
its log in a file (a pipe nobody drains would stall a server that logs a lot), and a descriptor
limit low enough that the connection cap (spec 2.6) can be reached from one test."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, ServerProcess, free_port

REQUEST_TIMEOUT = 1.0  # --request-timeout: the slow-client examples wait about this long
IDLE_TIMEOUT = 5.0  # the edge's keep-alive bound (spec 2.6); not configurable
# The capped server's soft descriptor limit. The edge allows the limit minus 128 minus the accept
# burst of 64 connections, and at least 16 (spec 2.6): 64 here.
CAPPED_NOFILE = 256
CONNECTION_CAP = CAPPED_NOFILE - 128 - 64


def _nofile(limit: int | None):
    def lower() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    return lower if limit else None


class LoggedServer(ServerProcess):
    """A reference server whose output goes to a file, optionally with a low descriptor limit."""

    def __init__(self, argv: list[str], port: int, data_dir: Path, log_path: Path, nofile: int | None = None):
        super().__init__(argv, port, data_dir)
        self.log_path = log_path
        self.port = port
        self.nofile = nofile

    def start(self) -> "LoggedServer":
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        preexec_fn=_nofile(self.nofile))
        self.wait_healthy()
        return self

    def output(self) -> str:
        return self.log()

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace")

    def stop(self) -> str:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.log()

    # ---- what the resource checks read ----------------------------------------------------
    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def open_descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


# The parser the server runs: "auto" is httptools where installed (what a deployment gets),
# "h11" the pure-Python fallback; VAULT_FUZZ_HTTP=auto,h11 fuzzes both.
HTTP_IMPLEMENTATIONS = [name for name in os.environ.get("VAULT_FUZZ_HTTP", "auto").split(",") if name]


def _warm_up(server: LoggedServer) -> None:
    """One of each costly kind before the baseline is read: imports, caches and the allocator's
    first arenas are not growth."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.post("/api/v1/enclave", content=b" " * ((1 << 20) - 2) + b"{}")
        client.post("/api/v1/enclave", content=b"{" * (2 << 20))
        client.get("/api/v1/enclave/attestation?nonce=00")
        client.get("/api/v1/enclave")
    time.sleep(0.2)


def start_logged(tmp_path_factory, http: str, *, request_timeout: float, nofile: int | None = None) -> LoggedServer:
    data_dir = tmp_path_factory.mktemp("fuzz-data")
    port = free_port()
    argv = [sys.executable, "-m", "reference.cli", "serve", "--port", str(port), "--data-dir", str(data_dir),
            "--insecure-dev-master-key-file", "--request-timeout", str(request_timeout), "--http", http]
    server = LoggedServer(argv, port, data_dir, data_dir.parent / f"{data_dir.name}.log", nofile).start()
    server.http = http
    server.sent = 0  # requests the tests sent, for the report
    return server


@pytest.fixture(scope="module", params=HTTP_IMPLEMENTATIONS)
def vault(request, tmp_path_factory):
    server = start_logged(tmp_path_factory, request.param, request_timeout=REQUEST_TIMEOUT)
    _warm_up(server)
    server.baseline_rss, server.baseline_descriptors = server.rss_bytes(), server.open_descriptors()
    yield server
    output = server.stop()
    assert "Traceback" not in output, output


@pytest.fixture
def capped_vault(vault, tmp_path_factory):
    """A second server whose connection cap is small enough to fill (the main one's is not touched)."""
    server = start_logged(tmp_path_factory, vault.http, request_timeout=30, nofile=CAPPED_NOFILE)
    yield server
    output = server.stop()
    assert "Traceback" not in output, output
