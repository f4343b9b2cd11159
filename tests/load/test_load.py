"""Load with Locust: an envelope-speaking user mixing the Vault's operations for a fixed time.

Locust runs headless as a subprocess (gevent monkey-patches; it must not share this process),
against one reference instance, then against two instances on one PostgreSQL database with
every request sent to either. Each run must end with no failure, and every acknowledged write
the users logged must read back (tests/load/readback.py). p50/p99 and throughput are printed
(``pytest -s`` shows them). ``VAULT_LOAD_SECONDS``, ``VAULT_LOAD_USERS`` and
``VAULT_LOAD_PROCESSES`` (Locust workers) change the run.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, start_reference
from tests.load.readback import read_back, read_ledger

# ~50 s each (boot, 15 s of load, the read-back): not in the main suite, see the load tox env.
pytestmark = [pytest.mark.server, pytest.mark.load, pytest.mark.long]

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
SECONDS = int(os.environ.get("VAULT_LOAD_SECONDS", "15"))
USERS = int(os.environ.get("VAULT_LOAD_USERS", "16"))
# Locust's master/worker mode on this machine (--processes): each worker logs its own ledger.
PROCESSES = os.environ.get("VAULT_LOAD_PROCESSES")


def _require_locust() -> None:
    found = subprocess.run([sys.executable, "-c", "import locust"], capture_output=True)
    if found.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("locust is required under CI (the load extra)")
        pytest.skip("locust is not installed (the load extra)")


def run_locust(host: str, workdir: Path, *, instances: list[str] = ()) -> tuple[dict, list[Path]]:
    """Locust headless for SECONDS; the aggregated stats row, and the ledgers it wrote."""
    _require_locust()
    workdir.mkdir(parents=True, exist_ok=True)
    ledger = workdir / "ledger"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VAULT_LOAD_LEDGER": str(ledger),
           "VAULT_LOAD_INSTANCES": ",".join(instances)}
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(USERS),
            "-r", str(USERS), "-t", f"{SECONDS}s", "--host", host, "--csv", str(workdir / "run"),
            "--only-summary", "--stop-timeout", "10", "--loglevel", "WARNING"]
    if PROCESSES:
        argv += ["--processes", PROCESSES]
    completed = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=SECONDS + 90)
    output = completed.stdout + completed.stderr
    with open(workdir / "run_stats.csv") as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    aggregated = rows["Aggregated"]
    # Locust exits 1 when any request failed; the stats say which.
    assert int(aggregated["Failure Count"]) == 0 and completed.returncode == 0, output[-6000:]
    assert "Traceback" not in output, output[-6000:]
    return aggregated, sorted(workdir.glob("ledger.*"))


def _report(title: str, stats: dict, checked) -> str:
    line = (f"{title}: {stats['Request Count']} requests in {SECONDS}s, {float(stats['Requests/s']):.0f} req/s, "
            f"p50 {stats['50%']} ms, p99 {stats['99%']} ms, {stats['Failure Count']} failures; "
            f"read back {checked.writes_checked} writes ({checked})")
    print(line)
    return line


def _load_and_read_back(title: str, urls: list[str], workdir: Path) -> None:
    stats, ledgers = run_locust(urls[0], workdir, instances=urls if len(urls) > 1 else [])
    accounts = read_ledger(ledgers)
    began = time.monotonic()
    checked = read_back(urls, accounts)
    print(f"{title}: {len(ledgers)} ledger(s), read back in {time.monotonic() - began:.1f}s")
    _report(title, stats, checked)
    assert not checked.problems, checked.problems[:20]
    # The mix really ran: a run that acknowledged nothing would read back vacuously.
    assert checked.accounts >= USERS and checked.refused_old_keys > 0 and checked.eoas > 0
    assert checked.live_tokens + checked.dead_tokens > 0


def test_load_on_one_instance(tmp_path):
    server = start_reference(tmp_path / "data", "--insecure-dev-master-key-file")
    try:
        _load_and_read_back("one instance (SQLite)", [server.url], tmp_path / "load")
    finally:
        output = server.stop()
    assert "Traceback" not in output, output


def test_load_on_two_instances_sharing_postgresql(postgres_cluster, tmp_path):
    extra = ("--insecure-dev-master-key-file", "--database-url", postgres_cluster.create_database())
    a = start_reference(tmp_path / "a", *extra)
    servers = [a]
    try:
        # One Vault: the same master key and development attestation PKI on both.
        shutil.copy2(tmp_path / "a" / "master.key", (tmp_path / "b").mkdir() or tmp_path / "b" / "master.key")
        shutil.copytree(tmp_path / "a" / "nsm", tmp_path / "b" / "nsm")
        servers.append(start_reference(tmp_path / "b", *extra))
        _load_and_read_back("two instances (one PostgreSQL)", [s.url for s in servers], tmp_path / "load")
    finally:
        outputs = [server.stop() for server in servers]
    for output in outputs:
        assert "Traceback" not in output, output
