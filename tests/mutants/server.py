"""Serve the reference Vault with one variant's defect (or none), for the mutation suite.

    python -m tests.mutants.server --variant reuse-response-key --port 8081 --data-dir DIR
    python -m tests.mutants.server --variant pristine --port 8081 --data-dir DIR

"pristine" is the same launcher with no patch: the suite checks that it passes, so a harness
check that fails everything cannot "kill" mutants. The master key is a development key file,
not the embedded mock KMS: no KMS process to start, and the variants do not touch key handling.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tests.mutants.variants import VARIANTS

PRISTINE = "pristine"


def build(name: str, data_dir: Path):
    from reference import cli
    from reference.config import Config

    app = cli.build_app(Config(data_dir=data_dir, insecure_dev_master_key_file=True))
    return app if name == PRISTINE else VARIANTS[name].patch(app)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", choices=[PRISTINE, *VARIANTS], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    import uvicorn

    uvicorn.run(build(args.variant, args.data_dir), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
