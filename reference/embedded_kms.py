"""The embedded default (spec §11.2): the mocked KMS as a subprocess, never an import.

``vault-reference serve`` without ``--kms-key-id`` starts ``python -m harness.kms.server`` with its
state in ``<data-dir>.kms/`` (beside the data directory, never inside: it plays AWS's role and
holds the key material), pins the simulated NSM's development root in it, creates on first use a
key whose policy allows Decrypt/GenerateDataKey only with the simulated NSM's PCR0, and runs the
ordinary boot flow against it. The subprocess stops when the Vault stops.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import sibling
from .enclave.kms import KmsUnreachable

ACCOUNT = "111122223333"
ENCLAVE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/vault-enclave"
ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/vault-admin"
REGION = "us-east-1"
KEY_ARN_FILE = "embedded-key-arn"


def locked_policy(pcr0_hex: str) -> str:
    """KMS.md §2's locked shape: the release actions only for the attested image."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": ADMIN_ROLE},
         "Action": ["kms:Create*", "kms:Describe*", "kms:Get*", "kms:List*", "kms:Put*"], "Resource": "*"},
        {"Sid": "EnclaveReadsItsPolicy", "Effect": "Allow", "Principal": {"AWS": ENCLAVE_ROLE},
         "Action": ["kms:GetKeyPolicy", "kms:DescribeKey"], "Resource": "*"},
        {"Sid": "EnclaveOnly", "Effect": "Allow", "Principal": {"AWS": ENCLAVE_ROLE},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
         "Condition": {"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": pcr0_hex,
                                                  "kms:RecipientAttestation:ImageSha384": pcr0_hex}}}]})


def state_dir_for(data_dir: Path) -> Path:
    data_dir = data_dir.resolve()
    return data_dir.with_name(data_dir.name + ".kms")


def _die_with_parent() -> None:
    """Linux: the mock gets SIGTERM when the Vault process ends, however it ends (uvicorn
    re-raises SIGTERM after its shutdown, which skips ``finally``; a crash skips everything)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedKms:
    def __init__(self, data_dir: Path, root_pem: bytes):
        self.state_dir = state_dir_for(data_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "attestation-root.pem").write_bytes(root_pem)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "EmbeddedKms":
        log = open(self.state_dir / "server.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", sibling("harness.kms.server"), "--host", "127.0.0.1", "--port", str(self.port),
             "--state-dir", str(self.state_dir / "state"),
             "--attestation-root", str(self.state_dir / "attestation-root.pem"),
             "--account", ACCOUNT, "--region", REGION, "--default-principal", ENCLAVE_ROLE],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise KmsUnreachable(f"the embedded mock KMS exited with status {self.process.returncode} "
                                     f"(see {self.state_dir / 'server.log'})")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise KmsUnreachable("the embedded mock KMS did not start listening in 30 s")

    def key_arn(self, client, pcr0_hex: str) -> str:
        """The development key: created once with the locked policy, then reused."""
        arn_file = self.state_dir / KEY_ARN_FILE
        if arn_file.exists():
            return arn_file.read_text().strip()
        arn = client.create_key(locked_policy(pcr0_hex), "vault-reference embedded development master key")
        arn_file.write_text(arn + "\n")
        return arn

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
