"""``vault-reference``: run the reference Vault (host front + in-process enclave)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .config import Config


def build_enclave(config: Config, resources: list | None = None):
    """The enclave side: master key (spec §11), sealed store, operations.

    Processes started on the way (the embedded mock KMS) are appended to ``resources`` for the
    caller to stop; they are also stopped at interpreter exit.
    """
    import atexit

    from .enclave.keyring import FileMasterKey
    from .enclave.service import Enclave, KeyPolicySource

    config.data_dir.mkdir(parents=True, exist_ok=True)
    nsm = build_nsm(config)
    key_policy = None
    if config.insecure_dev_master_key_file:
        print(f"WARNING: INSECURE development master key in a plain file ({config.master_key_file}); "
              "anyone with the data directory has every key. Never use this outside development.",
              file=sys.stderr, flush=True)
        master_key = FileMasterKey(config.master_key_file).load()
    else:
        from .enclave import kms
        from .enclave.kms_client import Boto3KmsClient

        if config.kms_link:
            from .enclave.kms_link import LinkKmsClient

            client = LinkKmsClient(config.kms_link.removeprefix("serial:"))
            key_id = client.key_arn()
            print(f"vault-reference: master key from KMS key {key_id} through {client.where}", flush=True)
        elif config.kms_key_id:
            client = Boto3KmsClient(region=config.kms_region, endpoint_url=config.kms_endpoint)
            key_id = config.kms_key_id
            print(f"vault-reference: master key from KMS key {key_id} ({client.where})", flush=True)
        else:
            from .embedded_kms import REGION, EmbeddedKms
            from .enclave.nsm import SimulatedNsm

            if not isinstance(nsm, SimulatedNsm):
                raise kms.KmsFailed("the embedded mock KMS needs the simulated NSM; give --kms-key-id")
            embedded = EmbeddedKms(config.data_dir, nsm.root_pem()).start()
            atexit.register(embedded.stop)
            if resources is not None:
                resources.append(embedded)
            client = Boto3KmsClient(region=REGION, endpoint_url=embedded.url,
                                    access_key_id="vault-enclave-dev", secret_access_key="mock")
            key_id = embedded.key_arn(client, nsm.pcrs[0].hex())
            print(f"vault-reference: master key from the embedded mock KMS at {embedded.url} "
                  f"(state {embedded.state_dir}, key {key_id}, simulated NSM PCR0 {nsm.pcrs[0].hex()[:16]}...)",
                  flush=True)
        master_key, key_arn = kms.release_master_key(
            client, nsm, kms.DataKeyFile(config.data_dir / kms.DATA_KEY_FILE), key_id)
        key_policy = KeyPolicySource(key_arn, client.get_key_policy)
    return Enclave(kv=build_store(config), master_key=master_key, nsm=nsm,
                   static_key_epoch=config.static_key_epoch, key_policy_source=key_policy,
                   replay_window=config.replay_window, response_binding=config.response_binding)


def describe(config: Config) -> str:
    """Where the keys and records come from, in one line for the start-up message."""
    if config.insecure_dev_master_key_file:
        key = f"master key: INSECURE development file {config.master_key_file}"
    elif config.kms_link:
        key = f"master key: KMS through the launcher ({config.kms_link})"
    elif config.kms_key_id:
        key = f"master key: KMS {config.kms_key_id}"
    else:
        key = "master key: the embedded mock KMS"
    nsm = "NSM: /dev/nsm" if config.nsm == "device" else f"NSM: the launcher's, over {config.nsm}" \
        if config.nsm.startswith("serial:") else (
        "NSM: simulated (development root at /api/v1/enclave/attestation/dev-root"
        + (", debug mode" if config.nsm_debug else "") + ")")
    store = "store: PostgreSQL" if config.database_url else f"store: SQLite {config.database}"
    return "; ".join((key, nsm, store))


def build_store(config: Config):
    """PostgreSQL when a database URL is given (instances may share it), else SQLite in the data directory."""
    if config.database_url:
        from .enclave.pg_store import PostgresStore

        return PostgresStore(config.database_url)
    from .enclave.store import SqliteStore

    return SqliteStore(config.database)


def build_nsm(config: Config):
    """The attestation source: the real /dev/nsm, or a simulated NSM with a persisted dev PKI."""
    from .enclave.nsm import DeviceNsm, SimulatedNsm

    if config.nsm == "device":
        return DeviceNsm()
    if config.nsm.startswith("serial:"):
        from .enclave.nsm.link import LinkNsm

        return LinkNsm(config.nsm.removeprefix("serial:"))
    pcrs = config.load_pcrs()
    if not pcrs and not config.nsm_debug:
        # Development measurements (spec 11.2): a key policy pinned to all-zero PCRs would admit
        # every debug-mode enclave, so the embedded default does not pretend to be one.
        import hashlib

        pcrs = {n: hashlib.sha384(f"vault-reference/simulated-nsm/dev-pcr/{n}".encode()).digest() for n in (0, 1, 2)}
    return SimulatedNsm(config.data_dir / "nsm", pcrs=pcrs, debug=config.nsm_debug)


def build_app(config: Config, enclave_address: str | None = None, resources: list | None = None,
              enclave_timeout: float | None = None):
    """The host front; with ``enclave_address`` it forwards over a socket, else to an in-process enclave."""
    from .host.app import HostApp
    from .host.transport import DEFAULT_ENCLAVE_TIMEOUT, InProcessTransport, SocketTransport

    if enclave_address:
        return HostApp(SocketTransport(enclave_address, timeout=enclave_timeout or DEFAULT_ENCLAVE_TIMEOUT))
    return HostApp(InProcessTransport(build_enclave(config, resources)))


def _run_http(app, config: Config, http: str = "auto", loop: str = "auto", request_timeout: float | None = None) -> None:
    import uvicorn

    from .host.edge import EdgeLimits, guarded_protocol, protocol_class

    limits = EdgeLimits(request_timeout=request_timeout or EdgeLimits.request_timeout)
    print(f"vault-reference: serving http://{config.host}:{config.port} ({describe(config)})", flush=True)
    # "auto" is uvicorn's own choice: httptools and uvloop when installed, else h11 and asyncio;
    # either protocol runs inside the edge's limits (host/edge.py, spec 2.6).
    uvicorn.run(app, host=config.host, port=config.port, access_log=False, log_level="warning",
                http=guarded_protocol(protocol_class(http), limits), loop=loop,
                timeout_keep_alive=limits.idle_timeout, h11_max_incomplete_event_size=limits.max_head_bytes,
                backlog=limits.accept_burst,
                ws="none")  # no WebSocket: an Upgrade header gets the route's ordinary answer (2.1)


def _config(args) -> Config:
    """The configuration, checked as far as it can be before starting: ports, files, addresses."""
    config = Config.from_env(
        host=getattr(args, "host", None), port=getattr(args, "port", None),
        data_dir=getattr(args, "data_dir", None), nsm=getattr(args, "nsm", None),
        nsm_debug=getattr(args, "nsm_debug", None), pcrs_file=getattr(args, "pcrs_file", None),
        kms_key_id=getattr(args, "kms_key_id", None), kms_region=getattr(args, "kms_region", None),
        kms_endpoint=getattr(args, "kms_endpoint", None), kms_link=getattr(args, "kms_link", None),
        insecure_dev_master_key_file=getattr(args, "insecure_dev_master_key_file", None),
        static_key_epoch=getattr(args, "static_key_epoch", None),
        database_url=getattr(args, "database_url", None),
        replay_window=getattr(args, "replay_window", None), response_binding=getattr(args, "response_binding", None))
    if config.pcrs_file is not None:
        try:
            config.load_pcrs()
        except OSError as error:
            raise ValueError(f"--pcrs-file {config.pcrs_file}: cannot be read ({error.strerror or error})") from None
        except ValueError as error:  # not JSON, no PCRn, bad hex
            raise ValueError(f"--pcrs-file {config.pcrs_file}: {error}") from None
    from .framing import parse_address

    for option in ("listen", "enclave"):
        address = getattr(args, option, None)
        if address is not None:
            try:
                family, _ = parse_address(address)
                if option == "enclave" and family == "serial":
                    raise ValueError("serial: is an enclave's listen address; the host connects to tcp: or vsock:")
            except ValueError as error:
                raise ValueError(f"--{option} {address}: {error}") from None
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vault-reference", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the Vault over HTTP")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--data-dir", type=Path, help="where the encrypted store and dev master key live")
    enclave = sub.add_parser("enclave", help="run only the enclave side, answering framed requests")
    enclave.add_argument("--listen", required=True, help="tcp:HOST:PORT, vsock:CID:PORT or serial:PORT (a virtio-serial "
                         "port name or device, in the local microVM)")
    enclave.add_argument("--data-dir", type=Path, help="where the encrypted store and dev master key live")
    for command in (serve, enclave):
        command.add_argument("--nsm", help="attestation source: simulated (default), device (/dev/nsm), or "
                             "serial:PORT (the launcher's NSM across the local microVM's port, spec 9.11)")
        command.add_argument("--nsm-debug", action="store_true", default=None,
                             help="simulate a debug-mode enclave (PCR0/1/2/8 all zero)")
        command.add_argument("--pcrs-file", type=Path,
                             help="PCRs the simulated NSM reports: describe-eif JSON or {\"PCR0\": hex, ...}")
        command.add_argument("--kms-key-id", help="KMS key ARN holding the master key (default: the embedded "
                             "mock KMS, state in <data-dir>.kms/)")
        command.add_argument("--kms-region", help="AWS region of the KMS key (default: boto3's)")
        command.add_argument("--kms-endpoint", help="KMS endpoint URL (default: AWS's for the region)")
        command.add_argument("--kms-link", help="serial:PORT: KMS through the local microVM launcher's proxy, "
                             "with its key (spec 9.11)")
        command.add_argument("--insecure-dev-master-key-file", action="store_true", default=None,
                             help="INSECURE, development only: a plain master key file in the data directory")
        command.add_argument("--static-key-epoch", type=int,
                             help="epoch of the static X25519 key derived from the master key (default 1)")
        command.add_argument("--replay-window", type=int,
                             help="refuse a request whose ephemeral key was among the last N seen (spec 10.7.1; "
                                  "default 0: off; per instance, bounded by memory)")
        command.add_argument("--no-response-binding", dest="response_binding", action="store_false", default=None,
                             help="do not echo a caller's responseBinding (spec 10.7.2; for demonstrations only)")
        command.add_argument("--database-url",
                             help="postgresql://... : store in PostgreSQL, shareable by several instances "
                             "(env VAULT_DATABASE_URL; default SQLite in the data directory)")
    host = sub.add_parser("host", help="run only the HTTP front, forwarding to an enclave process")
    host.add_argument("--enclave", required=True, help="tcp:HOST:PORT or vsock:CID:PORT of the enclave")
    host.add_argument("--host", help="address to bind (default 127.0.0.1)")
    host.add_argument("--port", type=int, help="port (default 8080)")
    for command in (serve, host):
        command.add_argument("--http", choices=["auto", "h11", "httptools"], default="auto",
                             help="HTTP/1.1 implementation (default auto: httptools if installed, else h11)")
        command.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto",
                             help="event loop (default auto: uvloop if installed, else asyncio)")
        command.add_argument("--request-timeout", type=float, default=None,
                             help="seconds a client has to send a whole request (default 10)")
    host.add_argument("--enclave-timeout", type=float, default=None,
                      help="seconds to wait for the enclave's answer before 503 (default 30)")
    args = parser.parse_args(argv)
    try:
        config = _config(args)
    except (ValueError, OSError) as error:  # bad usage: one line, exit 2, before anything starts
        print(f"vault-reference: {error}", file=sys.stderr, flush=True)
        return 2

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from .enclave.errors import VaultError

    resources: list = []
    try:
        if args.command == "serve":
            _run_http(build_app(config, resources=resources), config, http=args.http, loop=args.loop,
                      request_timeout=args.request_timeout)
        elif args.command == "host":
            _run_http(build_app(config, enclave_address=args.enclave, enclave_timeout=args.enclave_timeout), config,
                      http=args.http, loop=args.loop, request_timeout=args.request_timeout)
        else:
            import asyncio

            from .enclave.server import serve as serve_enclave

            asyncio.run(serve_enclave(build_enclave(config, resources), args.listen))
    except (VaultError, ValueError, OSError) as error:
        # One line naming the cause (a KMS denial, an unreachable KMS, bad configuration), no traceback.
        cause = getattr(error, "cause", None) or str(error)
        print(f"vault-reference: cannot start: {cause}", file=sys.stderr, flush=True)
        return 1
    finally:
        for resource in resources:
            resource.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
