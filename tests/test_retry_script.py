"""scripts/retry.py: the tox envs' npm installs survive transient registry errors (issue: a CI run
failed on one certificate error during `npm ci`)."""

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "retry.py"
FLAKY = "import pathlib, sys; p = pathlib.Path(sys.argv[1]); n = int(p.read_text() or 0) + 1; p.write_text(str(n)); sys.exit(0 if n >= {} else 1)"


def run(tries, succeed_on, tmp_path):
    counter = tmp_path / "n"
    counter.write_text("")
    completed = subprocess.run([sys.executable, str(SCRIPT), str(tries), sys.executable, "-c", FLAKY.format(succeed_on),
                                str(counter)], env={**os.environ, "RETRY_DELAY": "0"}, capture_output=True, text=True)
    return completed.returncode, int(counter.read_text())


def test_a_transient_failure_is_retried(tmp_path):
    assert run(3, 3, tmp_path) == (0, 3)


def test_a_lasting_failure_gives_up_after_n_tries_with_its_status(tmp_path):
    assert run(3, 99, tmp_path) == (1, 3)


def test_success_runs_once(tmp_path):
    assert run(3, 1, tmp_path) == (0, 1)


def test_dash_c_runs_the_command_in_that_directory(tmp_path):
    where = tmp_path / "there"
    where.mkdir()
    completed = subprocess.run([sys.executable, str(SCRIPT), "-C", str(where), "1", sys.executable, "-c",
                                "import os; print(os.getcwd())"], capture_output=True, text=True)
    assert completed.returncode == 0 and Path(completed.stdout.strip()) == where.resolve()
