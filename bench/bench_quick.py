"""Benchmark: how long the harness takes against the reference, `--quick` beside the full run.

The target: a `--quick` run of every profile against the reference on loopback finishes in under
30 s here, so a CI pipeline can afford it on every commit. Both runs check one reference process
(embedded defaults: mock KMS, simulated NSM) started once, alternated over a few trials so they
share the machine's state; the medians are printed side by side with their ratio, and each run's
five slowest checks (what to look at next).

    python bench/bench_quick.py [--trials 3] [--limit 30]

Exits 1 when the median quick run takes longer than the limit, or a run does not pass.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HARNESS = [sys.executable, "-m", "harness.cli", "run", "--attestation-root-from-target", "--allow-debug", "--quiet"]


def one_run(target: str, extra: list[str]) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as reports:
        started = time.perf_counter()
        completed = subprocess.run([*HARNESS, "--target", target, "--report-dir", reports, *extra],
                                   capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
        seconds = time.perf_counter() - started
        if completed.returncode != 0:
            raise SystemExit(f"the harness did not pass ({completed.returncode}):\n{completed.stdout[-2000:]}")
        return seconds, json.loads((Path(reports) / "report.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--limit", type=float, default=30.0, help="seconds the median quick run may take")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a checkout's packages
    from harness.cli import SpawnedReference

    reference = SpawnedReference().start()
    try:
        times: dict[str, list[float]] = {"quick": [], "full": []}
        slowest: dict[str, list] = {}
        for _ in range(args.trials):
            for name, extra in (("quick", ["--quick"]), ("full", [])):
                seconds, report = one_run(reference.url, extra)
                times[name].append(seconds)
                slowest[name] = sorted(report["results"], key=lambda r: -r["seconds"])[:5]
    finally:
        reference.stop()
    quick, full = statistics.median(times["quick"]), statistics.median(times["full"])
    for name in ("quick", "full"):
        runs = ", ".join(f"{t:.1f}" for t in times[name])
        print(f"{name:<6} median {statistics.median(times[name]):6.1f} s (runs: {runs}); slowest checks: "
              + ", ".join(f"{r['id']} {r['seconds']:.1f} s" for r in slowest[name]))
    print(f"quick / full = {quick / full:.2f}   (limit for quick: {args.limit:g} s, wall time incl. start-up)")
    verdict = "PASS" if quick <= args.limit else "FAIL"
    print(f"{verdict}: quick run {quick:.1f} s against a {args.limit:g} s budget")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
