"""A Vault that implements nothing: the real envelope and endpoints, and `unknown_operation` for
every operation. The harness must fail it (exit 1) and name the UNIMPLEMENTED MUST checks.

    python -m tests.harness.null_vault --port 8081 --data-dir DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path


def build(data_dir: Path):
    from reference import cli
    from reference.config import Config
    from reference.enclave import operations

    operations.default_operations = lambda: {}  # every operation name is now unknown
    return cli.build_app(Config(data_dir=data_dir))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    import uvicorn

    uvicorn.run(build(args.data_dir), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
