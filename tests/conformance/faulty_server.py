"""A reference Vault with one deliberate fault, to prove the harness notices it.

    python -m tests.conformance.faulty_server --fault reuse-response-key --port 8081 --data-dir DIR
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

FAULTS = ("reuse-response-key", "reuse-response-nonce", "500-on-bad-input", "plaintext-errors", "unattested-key")


def build(fault: str, data_dir: Path):
    from reference import cli
    from reference.config import Config
    from reference.enclave import envelope, service

    fixed_secret, fixed_nonce = os.urandom(32), os.urandom(24)

    def faulty_random(size):  # the reply's secret is the 32-byte draw, its nonce the 24-byte one
        if size == envelope.KEY_BYTES and fault == "reuse-response-key":
            return fixed_secret
        if size == envelope.NONCE_BYTES and fault == "reuse-response-nonce":
            return fixed_nonce
        return os.urandom(size)

    real_sealer = envelope.ReplySealer
    service.envelope.ReplySealer = lambda client_public, random_bytes: real_sealer(client_public, faulty_random)
    app = cli.build_app(Config(data_dir=data_dir))
    if fault == "500-on-bad-input":
        transport = app.transport

        class CrashingTransport:
            async def request(self, kind, body):
                status, answer = await transport.request(kind, body)
                if 400 <= status < 500:
                    return 500, b"Traceback (most recent call last): ValueError"
                return status, answer

        app.transport = CrashingTransport()
    if fault == "unattested-key":
        # The NSM attests some other X25519 key than the one the Vault serves and uses.
        from reference.enclave import attestation

        real_attest = attestation.attest
        attestation.attest = lambda nsm, static_public, nonce, binding=b"": real_attest(nsm, os.urandom(32), nonce, binding)
    if fault == "plaintext-errors":
        enclave_run = app.transport._enclave.run

        def leaky_run(plaintext, **kwargs):
            reply = enclave_run(plaintext, **kwargs)
            if b'"success":false' in reply:
                raise RuntimeError("skip encryption")
            return reply

        original = app.transport._enclave.handle_envelope

        def handle(body):
            try:
                return original(body)
            except RuntimeError:
                return 400, b'{"error": {"message": "failed", "status": 400, "type": "operation_failed"}}'

        app.transport._enclave.run = leaky_run
        app.transport._enclave.handle_envelope = handle
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fault", choices=FAULTS, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    import uvicorn

    uvicorn.run(build(args.fault, args.data_dir), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
