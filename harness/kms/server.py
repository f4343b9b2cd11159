"""The mocked KMS as an HTTP server that boto3 (``endpoint_url``) and the AWS CLI drive unmodified.

    python -m harness.kms.server --host 127.0.0.1 --port 4566 --state-dir DIR \\
        --attestation-root ROOT.pem [--account 111122223333] [--region us-east-1] \\
        [--principal AKID=ARN ...] [--default-principal ARN | --no-default-principal]

Routes: ``POST /`` (AWS JSON 1.1, ``X-Amz-Target: TrentService.<Operation>``);
``GET /_mock/audit`` (the audit log, one JSON object per line); ``GET /_mock/health``.
All logic is in :class:`~harness.kms.service.MockKms`; this module only moves bytes.
"""

from __future__ import annotations

import argparse
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .service import DEFAULT_ACCOUNT, DEFAULT_PRINCIPAL, DEFAULT_REGION, KmsConfig, MockKms
from .state import StateStore

__all__ = ["KmsHttpServer", "main", "make_server"]

#: Larger bodies are refused (KMS's largest input, a 6 KiB ciphertext, base64'd, is far below).
MAX_BODY = 1 << 20


class _Handler(BaseHTTPRequestHandler):
    server: KmsHttpServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args) -> None:  # the audit log is the record; keep stderr quiet
        pass

    def _send(self, status: int, headers: dict, body: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/_mock/audit":
            lines = "".join(r.to_json() + "\n" for r in list(self.server.kms.audit))
            self._send(200, {"Content-Type": "application/x-ndjson"}, lines.encode())
        elif path == "/_mock/health":
            self._send(200, {"Content-Type": "text/plain"}, b"ok\n")
        else:
            self._send(404, {"Content-Type": "text/plain"}, b"not found\n")

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._send(413 if length > MAX_BODY else 400, {"Content-Type": "text/plain"}, b"bad Content-Length\n")
            self.close_connection = True
            return
        body = self.rfile.read(length)
        status, headers, out = self.server.kms.handle(self.headers.get("X-Amz-Target"), body, dict(self.headers))
        self._send(status, headers, out)


class KmsHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], kms: MockKms):
        super().__init__(address, _Handler)
        self.kms = kms

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start_in_thread(self) -> threading.Thread:
        """Serve in a daemon thread (in-process use: tests, the embedded reference default)."""
        t = threading.Thread(target=self.serve_forever, name="mock-kms", daemon=True)
        t.start()
        return t


def make_server(kms: MockKms, host: str = "127.0.0.1", port: int = 0) -> KmsHttpServer:
    return KmsHttpServer((host, port), kms)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness.kms.server", description="Mocked AWS KMS with Nitro "
                                "Enclaves Recipient support, key-policy evaluation and an audit log.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="TCP port (0 picks a free one; the URL is printed)")
    p.add_argument("--state-dir", required=True, type=Path,
                   help="where keys and policies persist (plays AWS's role: never inside a Vault's data directory)")
    p.add_argument("--attestation-root", required=True, type=Path,
                   help="PEM or DER trust root for Recipient attestation documents")
    p.add_argument("--account", default=DEFAULT_ACCOUNT)
    p.add_argument("--region", default=DEFAULT_REGION)
    p.add_argument("--principal", action="append", default=[], metavar="AKID=ARN",
                   help="map an access key id to a caller ARN (repeatable)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--default-principal", default=DEFAULT_PRINCIPAL,
                   help=f"caller ARN for any other access key id (default {DEFAULT_PRINCIPAL})")
    g.add_argument("--no-default-principal", action="store_true", help="refuse access key ids not mapped")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    principals = {}
    for item in args.principal:
        akid, sep, arn = item.partition("=")
        if not sep or not akid or not arn.startswith("arn:"):
            print(f"error: --principal wants AKID=ARN, got {item!r}", file=sys.stderr)
            return 2
        principals[akid] = arn
    try:
        root = args.attestation_root.read_bytes()
        from ..attestation import load_root

        load_root(root)
    except (OSError, ValueError) as exc:
        print(f"error: --attestation-root {args.attestation_root}: {exc}", file=sys.stderr)
        return 2
    store = StateStore(args.state_dir)
    config = KmsConfig(account=args.account, region=args.region, attestation_roots=[root], principals=principals,
                       default_principal=None if args.no_default_principal else args.default_principal)
    try:
        kms = MockKms(config, state=store, audit_sink=lambda r: store.append_audit(r.to_json()))
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: --state-dir {args.state_dir}: cannot load state: {exc}", file=sys.stderr)
        return 2
    try:
        server = make_server(kms, args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    print(f"mock KMS listening on {server.url} (account {args.account}, region {args.region})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
