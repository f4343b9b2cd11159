"""The pytest plugin (``pytest --vault-target URL``): one item per check, as a user's suite gets them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.server


def run_pytest(tmp_path, *argv):
    """pytest in an empty directory (the user's suite), with the installed plugin and nothing of ours."""
    completed = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *argv],
                               cwd=tmp_path, capture_output=True, text=True, timeout=600,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    return completed.returncode, completed.stdout + completed.stderr


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from tests.conftest import start_reference

    server = start_reference(tmp_path_factory.mktemp("plugin") / "data", "--insecure-dev-master-key-file")
    yield server
    server.stop()


def test_without_the_option_the_plugin_adds_nothing(tmp_path):
    (tmp_path / "test_own.py").write_text("def test_own():\n    pass\n")
    code, output = run_pytest(tmp_path)
    assert code == 0 and "1 passed" in output, output


def test_one_item_per_check_and_the_reference_passes(reference, tmp_path):
    (tmp_path / "test_own.py").write_text("def test_own():\n    pass\n")
    code, output = run_pytest(tmp_path, "--vault-target", reference.url, "--vault-profile", "core,attestation",
                              "--vault-attestation-root-from-target", "--vault-allow-debug", "--vault-examples", "3",
                              "-rA")
    assert code == 0, output[-3000:]
    assert "PASSED vault:e2e/health" in output or "e2e/health" in output
    from harness.runner import plan
    from harness.suites.registry import all_checks

    expected = len(plan(all_checks(), ["core", "attestation"])[0])
    assert f"{expected + 1} passed" in output, output[-1500:]  # every check, and the user's own test


def test_a_failing_check_fails_its_item_with_the_requirement(reference, tmp_path):
    # Without the development root pinned, the reference's documents do not verify: that item fails.
    code, output = run_pytest(tmp_path, "--vault-target", reference.url, "-k", "attestation/plain-document")
    assert code == 1, output
    assert "1 failed" in output and "chain-root-mismatch" in output and "requirement: GET /api/v1/enclave" in output


def test_a_bad_option_is_a_usage_error(tmp_path):
    code, output = run_pytest(tmp_path, "--vault-target", "not-a-url")
    assert code == 4 and "--vault-target" in output and "Traceback" not in output, output
