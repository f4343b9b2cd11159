"""The harness against a second, independent Vault (``server.mjs``, Node, written from the spec).

The point is the harness, not the server: a conforming implementation that shares no code with
``reference/`` must pass the profiles it implements (``core``, ``accounts``) and must fail the ones
it does not (``attestation``), so no check can lean on a quirk of the Python reference.

Needs ``npm ci`` in tests/interop (the server loads the published client's @noble libraries from
there); skipped only when that node_modules is absent outside CI. Under CI its absence fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, ServerProcess, free_port

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE.parent / "interop" / "node_modules" / "@noble"
pytestmark = [pytest.mark.server, pytest.mark.interop]


@pytest.fixture(scope="module")
def second_vault():
    if not NODE_MODULES.is_dir():
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            "tests/interop/node_modules is absent: run `npm ci` in tests/interop")
    node = shutil.which("node")
    assert node, "node is not on PATH, but tests/interop/node_modules exists"
    port = free_port()
    server = ServerProcess([node, str(HERE / "server.mjs"), "--port", str(port)], port, HERE).start()
    yield server
    output = server.stop()
    assert "Error" not in output, output


def run_harness(url: str, report_dir: Path, *args: str) -> tuple[int, dict, str]:
    completed = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--target", url, "--report-dir", str(report_dir), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    report = json.loads((report_dir / "report.json").read_text())
    return completed.returncode, report, completed.stdout + completed.stderr


def verdicts(report: dict) -> dict[str, str]:
    return {result["id"]: result["verdict"] for result in report["results"]}


def test_server_is_a_separate_vault(second_vault):
    # Guard against the fixture silently pointing at the reference: this server's own routing.
    assert httpx.get(second_vault.url + "/health").json() == {"status": "ok"}
    answer = httpx.get(second_vault.url + "/api/v1/enclave/attestation")
    assert answer.status_code == 404 and answer.json()["error"]["type"] == "not_found"


def test_passes_the_profiles_it_implements(second_vault, tmp_path):
    code, report, output = run_harness(second_vault.url, tmp_path, "--profile", "core", "--profile", "accounts")
    bad = {check: verdict for check, verdict in verdicts(report).items()
           if verdict in ("FAILED", "ERROR", "UNIMPLEMENTED", "UNEXPECTED-PASS")}
    assert code == 0 and not bad, output
    ran = {r["profile"] for r in report["results"] if r["verdict"] != "NOT-SELECTED"}
    assert ran == {"core", "accounts"}, ran
    # A run that checked nothing would also exit 0: require real OKs in both profiles.
    ok = {r["profile"] for r in report["results"] if r["verdict"] == "OK"}
    assert ok == {"core", "accounts"}, output


@pytest.fixture(scope="module")
def default_run(second_vault, tmp_path_factory):
    """One run with the default profiles (every one the spec defines), shared by the tests below."""
    return run_harness(second_vault.url, tmp_path_factory.mktemp("default-run"))


def test_fails_the_profiles_it_does_not_implement(default_run):
    code, report, output = default_run
    assert code == 1, output
    by_id = verdicts(report)
    levels = {r["id"]: r["level"] for r in report["results"]}
    attestation_musts = {c: v for c, v in by_id.items() if c.startswith("attestation/") and levels[c] == "MUST"}
    # The checks that ask for a document cannot pass a Vault that has none.
    for check in ("attestation/plain-document", "attestation/envelope-document", "attestation/fresh-per-nonce"):
        assert attestation_musts.get(check) in ("FAILED", "UNIMPLEMENTED"), (check, attestation_musts)
    # The profiles it implements still hold within the same run.
    unimplemented_areas = ("attestation/", "kms/", "eoa/", "tokens/", "solana/")
    failing_elsewhere = {c: v for c, v in by_id.items()
                         if not c.startswith(unimplemented_areas) and v in ("FAILED", "ERROR", "UNIMPLEMENTED")}
    assert not failing_elsewhere, output
    # It has no EOAs, no tokens and no Solana keys: no MUST of those profiles may pass it.
    passed = {c for c, v in by_id.items()
              if c.startswith(("eoa/", "tokens/", "solana/")) and levels[c] == "MUST" and v == "OK"}
    assert not passed, passed


# No attestation check may pass a Vault that has no attestation (bad-nonce once did: it counted a 404
# and `unknown_operation` as refusals).
def test_no_attestation_check_passes_without_attestation(default_run):
    _, report, _ = default_run
    passed = {r["id"] for r in report["results"] if r["id"].startswith("attestation/") and r["verdict"] == "OK"}
    assert not passed, passed
