"""The harness, run as a user would (its CLI), against a real reference server process."""

import json
import subprocess
import sys

import pytest

from harness.suites.registry import all_checks
from tests.conftest import ROOT, ServerProcess, free_port

pytestmark = pytest.mark.server


# The reference runs a simulated NSM (development root, no EIF measured: all-zero PCRs).
DEV_ATTESTATION = ("--attestation-root-from-target", "--allow-debug")


def run_harness(target: str, tmp_path, *extra: str) -> tuple[int, dict, str]:
    report_dir = tmp_path / "report"
    completed = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--target", target, "--report-dir", str(report_dir), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    report = json.loads((report_dir / "report.json").read_text()) if (report_dir / "report.json").exists() else {}
    return completed.returncode, report, completed.stdout + completed.stderr


def verdicts(report: dict) -> dict[str, str]:
    return {r["id"]: r["verdict"] for r in report["results"]}


def ran(report: dict) -> dict[str, str]:
    """The verdicts of the checks that ran (the rest are NOT-SELECTED)."""
    return {k: v for k, v in verdicts(report).items() if v != "NOT-SELECTED"}


def test_reference_passes_every_check(reference_server, tmp_path):
    code, report, output = run_harness(reference_server.url, tmp_path, "--strict", *DEV_ATTESTATION)
    assert code == 0, output
    got = verdicts(report)
    assert set(got) == {c.id for c in all_checks()}
    failing = {k: v for k, v in got.items() if v not in ("OK", "INFORMATIONAL")}
    assert not failing, output
    assert (tmp_path / "report" / "junit.xml").read_bytes().startswith(b"<?xml")


@pytest.mark.parametrize("fault, check_id", [
    ("reuse-response-key", "e2e/response-fresh-key"),
    ("reuse-response-nonce", "e2e/response-fresh-nonce"),
    ("500-on-bad-input", "errors/malformed-rejected"),
    ("plaintext-errors", "errors/encrypted-after-decrypt"),
    ("unattested-key", "attestation/plain-document"),
])
def test_harness_names_the_broken_requirement(fault, check_id, tmp_path):
    port = free_port()
    server = ServerProcess(
        [sys.executable, "-m", "tests.mutants.server", "--variant", fault, "--port", str(port),
         "--data-dir", str(tmp_path / "data")], port, tmp_path / "data").start()
    try:
        code, report, output = run_harness(server.url, tmp_path, "--select", check_id.split("/")[0] + "/*",
                                           "--examples", "5", *DEV_ATTESTATION)
    finally:
        server.stop()
    assert code == 1, output
    assert verdicts(report)[check_id] == "FAILED", output


def test_expected_failure_list_waives_and_flags_unexpected_passes(reference_server, tmp_path):
    waivers = tmp_path / "expected-failures.txt"
    waivers.write_text("e2e/health | passes on the reference, so listing it must fail the run\n")
    code, report, output = run_harness(reference_server.url, tmp_path, "--select", "e2e/health",
                                       "--expected-failures", str(waivers))
    assert code == 1 and ran(report) == {"e2e/health": "UNEXPECTED-PASS"}, output


def test_reference_attestation_fails_against_the_aws_root(reference_server, tmp_path):
    code, report, output = run_harness(reference_server.url, tmp_path, "--select", "attestation/plain-document",
                                       "--allow-debug")
    assert code == 1 and ran(report) == {"attestation/plain-document": "FAILED"}, output
    assert "chain-root-mismatch" in output
