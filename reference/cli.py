"""``vault-reference``: run the reference Vault (host front + in-process enclave)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .config import Config


def build_enclave(config: Config):
    """The enclave side: master key, sealed store, operations."""
    from .enclave.keyring import FileMasterKey
    from .enclave.service import Enclave
    from .enclave.store import SqliteStore

    config.data_dir.mkdir(parents=True, exist_ok=True)
    return Enclave(kv=SqliteStore(config.database), master_key=FileMasterKey(config.master_key_file).load(),
                   nsm=build_nsm(config))


def build_nsm(config: Config):
    """The attestation source: the real /dev/nsm, or a simulated NSM with a persisted dev PKI."""
    from .enclave.nsm import DeviceNsm, SimulatedNsm

    if config.nsm == "device":
        return DeviceNsm()
    return SimulatedNsm(config.data_dir / "nsm", pcrs=config.load_pcrs(), debug=config.nsm_debug)


def build_app(config: Config, enclave_address: str | None = None):
    """The host front; with ``enclave_address`` it forwards over a socket, else to an in-process enclave."""
    from .host.app import HostApp
    from .host.transport import InProcessTransport, SocketTransport

    if enclave_address:
        return HostApp(SocketTransport(enclave_address))
    return HostApp(InProcessTransport(build_enclave(config)))


def _run_http(app, config: Config, http: str = "auto", loop: str = "auto") -> None:
    import uvicorn

    # "auto" is uvicorn's own choice: httptools and uvloop when installed, else h11 and asyncio.
    uvicorn.run(app, host=config.host, port=config.port, access_log=False, log_level="warning",
                http=http, loop=loop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vault-reference", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the Vault over HTTP")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--data-dir", type=Path, help="where the encrypted store and dev master key live")
    enclave = sub.add_parser("enclave", help="run only the enclave side, answering framed requests")
    enclave.add_argument("--listen", required=True, help="tcp:HOST:PORT or vsock:CID:PORT")
    enclave.add_argument("--data-dir", type=Path, help="where the encrypted store and dev master key live")
    for command in (serve, enclave):
        command.add_argument("--nsm", choices=["simulated", "device"], help="attestation source (default simulated)")
        command.add_argument("--nsm-debug", action="store_true", default=None,
                             help="simulate a debug-mode enclave (PCR0/1/2/8 all zero)")
        command.add_argument("--pcrs-file", type=Path,
                             help="PCRs the simulated NSM reports: describe-eif JSON or {\"PCR0\": hex, ...}")
    host = sub.add_parser("host", help="run only the HTTP front, forwarding to an enclave process")
    host.add_argument("--enclave", required=True, help="tcp:HOST:PORT or vsock:CID:PORT of the enclave")
    host.add_argument("--host", help="address to bind (default 127.0.0.1)")
    host.add_argument("--port", type=int, help="port (default 8080)")
    for command in (serve, host):
        command.add_argument("--http", choices=["auto", "h11", "httptools"], default="auto",
                             help="HTTP/1.1 implementation (default auto: httptools if installed, else h11)")
        command.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto",
                             help="event loop (default auto: uvloop if installed, else asyncio)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = Config.from_env(host=getattr(args, "host", None), port=getattr(args, "port", None),
                             data_dir=getattr(args, "data_dir", None), nsm=getattr(args, "nsm", None),
                             nsm_debug=getattr(args, "nsm_debug", None), pcrs_file=getattr(args, "pcrs_file", None))
    if args.command == "serve":
        _run_http(build_app(config), config, http=args.http, loop=args.loop)
    elif args.command == "host":
        _run_http(build_app(config, enclave_address=args.enclave), config, http=args.http, loop=args.loop)
    else:
        import asyncio

        from .enclave.server import serve as serve_enclave

        asyncio.run(serve_enclave(build_enclave(config), args.listen))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
