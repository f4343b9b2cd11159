"""The main job: serve the reference Vault on loopback with its embedded defaults, check it with
the harness, stop it. Exit status is the harness's. Reports land in ./reports/.

    python scripts/main_job.py [--port 8080] [extra vault-harness run arguments...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import urllib.request


def wait_healthy(url: str, server: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the reference Vault exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the reference Vault did not become healthy in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--data-dir", help="keep the Vault's state here (default: a fresh temporary directory)")
    args, harness_args = parser.parse_known_args()
    url = f"http://127.0.0.1:{args.port}"
    with tempfile.TemporaryDirectory(prefix="vault-data-") as scratch:
        server = subprocess.Popen([sys.executable, "-m", "reference.cli", "serve", "--host", "127.0.0.1",
                                   "--port", str(args.port), "--data-dir",
                                   # inside the scratch dir, so the embedded KMS's <data-dir>.kms/ is removed too
                                   args.data_dir or f"{scratch}/data"])
        try:
            wait_healthy(url, server)
            print(f"reference Vault serving on {url}", flush=True)
            # The reference's simulated NSM signs with a development root, which the harness is told
            # to pin here (never do this against a real deployment: pin the AWS root instead).
            dev_attestation = [] if "--attestation-root" in harness_args else [
                "--attestation-root-from-target", *([] if "--expected-pcrs" in harness_args else ["--allow-debug"])]
            return subprocess.call([sys.executable, "-m", "harness.cli", "run", "--target", url,
                                    "--report-dir", "reports", *dev_attestation, *harness_args])
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    raise SystemExit(main())
