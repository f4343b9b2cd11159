"""The SQLite data directory runs out of space (spec 4.2, 7.6).

The data directory is a tiny tmpfs (mounting needs root: without it the test skips, and fails
under ``CI``). Once a filler file has taken the last byte, a write must be answered with the
clean encrypted internal error (HTTP 200, an envelope, no 500, nothing of the cause), reads go
on, nothing acknowledged before or during is lost, and once the space is freed the Vault takes
writes again, also after a restart.
"""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from harness.protocol.client import VaultClient
from tests.conftest import start_reference
from tests.faults.burst import DrainedOutput
from tests.load.readback import read_back, read_entries

pytestmark = [pytest.mark.server, pytest.mark.faults]

TMPFS_SIZE = "3m"  # the key file, the development PKI and a small database fit, with room to fill
INTERNAL_ERROR = {"success": False, "data": None, "error": {"code": "internal_server_error", "message": "internal error"}}


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"a tmpfs mount is required under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def tiny_data_dir(tmp_path):
    mount_point = tmp_path / "data"
    mount_point.mkdir()
    if os.geteuid() != 0:
        _unavailable("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs",
                              str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        _unavailable(f"mount -t tmpfs failed: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(directory) -> int:
    """Take every free byte with a filler file; its size."""
    chunk, written = b"\0" * 65536, 0
    with open(directory / "filler", "wb", buffering=0) as filler:
        while True:
            try:
                written += filler.write(chunk if len(chunk) else b"\0")
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
                if len(chunk) == 1:
                    return written
                chunk = chunk[: len(chunk) // 2]


def _create(client: VaultClient, entries: list, n: int) -> list:
    """``n`` accounts, each with an EOA; logs what was acknowledged; every refusal's reply."""
    refused = []
    for _ in range(n):
        account = client.call("serviceAccount:create", options={"metadata": {"fill": "x" * 200}})
        if not account.ok:
            refused.append((account.status, account.reply, account.unencrypted_error))
            continue
        entries.append({"kind": "account", "id": account.data["id"], "adminKey": account.data["adminKey"]})
        eoa = client.call("eoa:create", auth={"adminKey": account.data["adminKey"]}, options={"metadata": {}})
        if eoa.ok:
            entries.append({"kind": "eoa", "id": account.data["id"], "address": eoa.data["address"]})
        else:
            refused.append((eoa.status, eoa.reply, eoa.unencrypted_error))
    return refused


def test_a_full_disk_is_a_clean_error_loses_nothing_and_passes(tiny_data_dir):
    server = start_reference(tiny_data_dir, "--insecure-dev-master-key-file")
    log = DrainedOutput(server)
    entries: list[dict] = []
    try:
        client = VaultClient(server.url, timeout=15)
        assert not _create(client, entries, 20)
        _fill(tiny_data_dir)
        refused = _create(client, entries, 200)
        # Every refusal is the encrypted internal error of 4.2, in an HTTP 200, and says nothing more.
        assert refused, "the full disk refused nothing: the fault did not happen"
        assert all(status == 200 and reply == INTERNAL_ERROR for status, reply, _ in refused), refused[:5]
        assert all(not answer.body or b"Traceback" not in answer.body for answer in client.answers)
        # Reads need no space.
        first = entries[0]
        assert client.call("serviceAccount:get", auth={"adminKey": first["adminKey"]}).ok
        (tiny_data_dir / "filler").unlink()
        assert not _create(client, entries, 5), "no writes once space is free again"
        checked = read_back([server.url], read_entries(entries))
        assert not checked.problems, checked.problems[:10]
    finally:
        server.stop()
    restarted = start_reference(tiny_data_dir, "--insecure-dev-master-key-file")
    try:
        checked = read_back([restarted.url], read_entries(entries))
        print(f"disk full: {len(refused)} refusals, all the clean encrypted internal error; "
              f"read back {checked.writes_checked} writes after a restart ({checked})")
        assert not checked.problems, checked.problems[:10]
        assert not _create(VaultClient(restarted.url, timeout=15), entries, 2)
    finally:
        restarted.stop()
    output = log.text()
    assert "database or disk is full" in output  # the cause is logged inside, never sent
