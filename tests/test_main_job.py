"""The README's main job (scripts/main_job.py, what `tox -e main` runs): the harness starts the
reference on loopback with its embedded defaults, checks it and writes the reports; a port in use
is refused. Run as a script from another directory, as a user would, without PYTHONPATH."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.server
SCRIPT = ROOT / "scripts" / "main_job.py"


def _run(tmp_path, *argv):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, str(SCRIPT), *argv], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_main_job_checks_the_spawned_reference_and_writes_reports(tmp_path):
    completed = _run(tmp_path, "--port", str(free_port()), "--profile", "core,kms", "--quick")
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert report["passed"] is True and report["options"]["spawn_reference"] is True
    assert {r["profile"] for r in report["results"] if r["verdict"] == "OK"} == {"core", "kms"}
    assert (tmp_path / "reports" / "junit.xml").exists() and (tmp_path / "reports" / "report.html").exists()


def test_the_main_job_refuses_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        completed = _run(tmp_path, "--port", str(taken.getsockname()[1]))
    assert completed.returncode == 3 and "is in use" in completed.stderr and "Traceback" not in completed.stderr
