"""Shared fixtures: a real reference server process on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import settings

# CI: no deadline (2 noisy cores), print the blob that reproduces a failure.
settings.register_profile("ci", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, argv: list[str], port: int, data_dir: Path):
        self.url = f"http://127.0.0.1:{port}"
        self.data_dir = data_dir
        self.argv = argv
        self.process: subprocess.Popen | None = None

    def start(self, **popen) -> "ServerProcess":
        """Start the process (``popen``: more Popen arguments, e.g. ``preexec_fn``) and wait for /health."""
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(self.argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        **popen)
        # Read the server's output as it comes: a pipe nobody reads fills at 64 KiB and then blocks
        # the server's logging, and with it the whole Vault (its enclave logs on the event loop).
        self._output: list[bytes] = []
        self._reader = threading.Thread(target=lambda: self._output.extend(iter(self.process.stdout.readline, b"")),
                                        daemon=True)
        self._reader.start()
        return self.wait_healthy()

    def wait_healthy(self, seconds: float = 30) -> "ServerProcess":
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not become healthy")

    def stop(self) -> str:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.output() if self.process else ""

    def output(self) -> str:
        """Everything the process wrote so far (all of it once it has exited)."""
        reader = getattr(self, "_reader", None)
        if reader is None:  # a process started by the caller, not by start(): read the pipe now
            return self.process.stdout.read().decode(errors="replace")
        if self.process.poll() is not None:
            reader.join(10)
        return b"".join(self._output).decode(errors="replace")


def start_reference(data_dir: Path, *extra: str) -> ServerProcess:
    port = free_port()
    argv = [sys.executable, "-m", "reference.cli", "serve", "--port", str(port), "--data-dir", str(data_dir), *extra]
    return ServerProcess(argv, port, data_dir).start()


@pytest.fixture(scope="session")
def reference_server(tmp_path_factory):
    server = start_reference(tmp_path_factory.mktemp("vault-data"))
    yield server
    output = server.stop()
    assert "Traceback" not in output, output


# ---- Docker (the image tests: tests/enclave_build, tests/harness/test_container_image.py) ------------

def docker_available() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def docker_client():
    if not docker_available():
        # CI starts an engine (.ci/run): there, its absence is a failure, never a silent skip.
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            f"no Docker engine reachable (DOCKER_HOST={os.environ.get('DOCKER_HOST', '')!r})")
    import docker

    client = docker.from_env(timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client, tmp_path_factory):
    """The project's debootstrapped python3 base, built once per session (root and debootstrap
    needed), or ``$VAULT_ENCLAVE_BASE`` (an image ID) when a CI job has built it already."""
    import uuid

    from enclave_build import reference_image as ri

    pinned = os.environ.get("VAULT_ENCLAVE_BASE")
    if pinned:
        yield pinned
        return
    image_id = ri.build_base(docker_client, tag=f"{ri.BASE_REPOSITORY}:test-{uuid.uuid4().hex[:8]}",
                             workdir=tmp_path_factory.mktemp("base"))
    yield image_id
    try:
        docker_client.images.remove(image_id, force=True)
    except Exception:
        pass  # still the parent of an image another test holds
