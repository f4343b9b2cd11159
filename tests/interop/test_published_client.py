"""The published npm client @thirdweb-dev/vault-sdk@0.1.1, unmodified, against the reference (spec §2–§6)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
pytestmark = [pytest.mark.interop, pytest.mark.server]


def require_node_modules():
    if shutil.which("node") is None:
        pytest.fail("node is not installed: the interop tests need Node.js >= 18")
    if not (HERE / "node_modules" / "@thirdweb-dev" / "vault-sdk").is_dir():
        pytest.fail("run `npm ci` in tests/interop first (the tox env does)")


def test_ping_and_service_account_lifecycle(reference_server):
    require_node_modules()
    completed = subprocess.run(["node", "published_client_flow.mjs", reference_server.url + "/"],
                               cwd=HERE, capture_output=True, text=True, timeout=120)
    steps = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    assert [s["step"] for s in steps] == [
        "publicKey", "ping", "responseBinding echoed", "serviceAccount:create", "serviceAccount:get", "serviceAccount:rotate",
        "old admin key refused", "old rotation code refused", "new admin key works",
    ], completed.stdout + completed.stderr
    failed = [s for s in steps if not s["ok"]]
    assert not failed and completed.returncode == 0, json.dumps(failed, indent=1) + completed.stderr
