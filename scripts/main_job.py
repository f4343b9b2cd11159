"""The main job: the harness starts the reference Vault on loopback with its embedded defaults
(fresh temporary state, the mocked KMS, the simulated NSM), checks it, and stops it. Exit status
is the harness's. Reports land in ./reports/.

    python scripts/main_job.py [--port 8080] [extra vault-harness run arguments...]

A port already in use is refused (exit 3): the job never checks some other server by mistake.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# A script run from a checkout: its packages are top-level there (README, "Packaging").
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import cli  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8080, help="loopback port of the reference Vault (default 8080)")
    args, harness_args = parser.parse_known_args()
    return cli.main(["run", "--spawn-reference", "--spawn-port", str(args.port), "--report-dir", "reports",
                     *harness_args])


if __name__ == "__main__":
    sys.exit(main())
