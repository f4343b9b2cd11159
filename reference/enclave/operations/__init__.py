"""Operations the enclave runs inside the envelope (spec §5, §6), by wire name."""

from __future__ import annotations


def default_operations() -> dict:
    from .. import attestation
    from . import access_tokens, eoa, key_policy, ping, service_accounts, solana

    return {
        "ping": ping.ping,
        "serviceAccount:create": service_accounts.create,
        "serviceAccount:get": service_accounts.get,
        "serviceAccount:rotate": service_accounts.rotate,
        "enclave:attest": attestation.operation_attest,
        "enclave:keyPolicy": key_policy.key_policy,
        **eoa.OPERATIONS,
        **access_tokens.OPERATIONS,
        **solana.OPERATIONS,
    }
