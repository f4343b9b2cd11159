"""Benchmark: boot to first answer of the local enclave flavour (spec 9.11), against a 60 s target.

Each trial starts ``vault-eif run FILE.eif`` (QEMU microvm, TCG unless --accel) and times it from
the launcher's start to the enclave's first answer on the link. The launcher's own ``bootSeconds``
count from QEMU's start. The baseline runs in the same session: the same enclave program started
as a plain process on this machine (``vault-reference enclave --listen tcp:...``, simulated NSM, dev
key), timed to its first answer. Their ratio is what the VM and the emulation cost. The absolute
figures are printed beside it, and so are the failed boot attempts (a retried boot counts in its
trial's time).

    python -m enclave_build.reference_image build --local-enclave --base IMAGE --output out/
    python bench/bench_local_enclave.py --eif out/vault-reference.eif [--trials 3] [--limit 60]

Exits 1 when the median boot to first answer exceeds the limit.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reference import framing  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _first_answer(port: int, deadline: float) -> None:
    """Send a public-key frame until one is answered 200."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(framing.encode_request("public-key", b""))
                head = s.recv(6)
                if len(head) == 6 and int.from_bytes(head[:2], "big") == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("no answer before the deadline")


def boot_trial(eif: Path, accel: str) -> tuple[float, float, int]:
    """(seconds from the launcher's start to the ready event, the launcher's bootSeconds, failed attempts)."""
    port = _free_port()
    started = time.monotonic()
    launcher = subprocess.Popen([sys.executable, "-m", "enclave_build.cli", "run", str(eif), "--port", str(port),
                                 "--accel", accel], stdout=subprocess.PIPE, text=True, cwd=REPO)
    failed = 0
    try:
        for line in launcher.stdout:
            event = json.loads(line)
            if event["event"] == "boot-failed":
                failed += 1
            if event["event"] == "ready":
                return time.monotonic() - started, event["bootSeconds"], failed
        raise SystemExit(f"the launcher exited ({launcher.wait()}) without a ready event")
    finally:
        launcher.terminate()
        launcher.wait(30)


def process_trial() -> float:
    """The same enclave program as a host process: seconds to its first answer."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as data:
        started = time.monotonic()
        enclave = subprocess.Popen([sys.executable, "-m", "reference.cli", "enclave", "--listen", f"tcp:127.0.0.1:{port}",
                                    "--data-dir", data, "--nsm", "simulated", "--insecure-dev-master-key-file"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        try:
            _first_answer(port, started + 60)
            return time.monotonic() - started
        finally:
            enclave.terminate()
            enclave.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eif", type=Path, required=True, help="a local-flavour EIF (build --local-enclave)")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--limit", type=float, default=60.0, help="target for the median, seconds (default 60)")
    parser.add_argument("--accel", default="tcg")
    args = parser.parse_args()

    boots, qemu_boots, failures, processes = [], [], 0, []
    for trial in range(args.trials):  # alternated, so both see the same machine state
        total, from_qemu, failed = boot_trial(args.eif, args.accel)
        boots.append(total)
        qemu_boots.append(from_qemu)
        failures += failed
        processes.append(process_trial())
        print(f"trial {trial + 1}: microVM {total:6.2f} s (QEMU start → answer {from_qemu:6.2f} s, "
              f"{failed} failed boots)   process {processes[-1]:5.2f} s", flush=True)
    vm, proc = statistics.median(boots), statistics.median(processes)
    print()
    print(f"{'':34} {'median':>8} {'min':>8} {'max':>8}")
    print(f"{'microVM, launcher → first answer':34} {vm:7.2f}s {min(boots):7.2f}s {max(boots):7.2f}s")
    print(f"{'  of which QEMU start → answer':34} {statistics.median(qemu_boots):7.2f}s")
    print(f"{'process, start → first answer':34} {proc:7.2f}s {min(processes):7.2f}s {max(processes):7.2f}s")
    print(f"ratio microVM / process: {vm / proc:.1f}x; target: median < {args.limit:.0f} s "
          f"({'met' if vm < args.limit else 'NOT met'}, {vm / args.limit:.2f} of it); failed boot attempts: {failures}")
    return 0 if vm < args.limit else 1


if __name__ == "__main__":
    raise SystemExit(main())
