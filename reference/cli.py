"""``vault-reference``: run the reference Vault (host front + in-process enclave)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .config import Config


def build_app(config: Config):
    """Wire the enclave (keys, store) and the host front; returns the ASGI app."""
    from .enclave.keyring import FileMasterKey
    from .enclave.service import Enclave
    from .enclave.store import SqliteStore
    from .host.app import HostApp
    from .host.transport import InProcessTransport

    config.data_dir.mkdir(parents=True, exist_ok=True)
    enclave = Enclave(
        kv=SqliteStore(config.database),
        master_key=FileMasterKey(config.master_key_file).load(),
    )
    return HostApp(InProcessTransport(enclave))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vault-reference", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the Vault over HTTP")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--data-dir", type=Path, help="where the encrypted store and dev master key live")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = Config.from_env(host=args.host, port=args.port, data_dir=args.data_dir)
    import uvicorn

    uvicorn.run(build_app(config), host=config.host, port=config.port, access_log=False, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
