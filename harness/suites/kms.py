"""The master key's KMS policy, asked of the Vault itself (spec §11.6): `enclave:keyPolicy`.

The Vault answers, inside the envelope, the exact ``GetKeyPolicy`` string of its master key, the
key ARN and the policy's SHA-384; with a nonce, an attestation document whose ``user_data``
commits to ARN and hash. The checks recompute every hash from the bytes received (a claimed
digest proves nothing), verify the document with the harness's strict verifier and pinned roots,
and audit the policy (:mod:`harness.kms.audit`) against the PCRs that document attests.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from datetime import datetime, timezone

from ..attestation import AttestationError, Expectations, verify
from ..kms.audit import AuditError, audit_policy

from ._util import expect_success, require
from .registry import CheckFailed, Context, Level, check

OPERATION = "enclave:keyPolicy"
#: Domain of the user_data commitment (spec §11.6.1).
USER_DATA_DOMAIN = b"vault-reference/key-policy/v1\x00"
_HEX96 = re.compile(r"[0-9a-f]{96}")


def key_policy_user_data(key_arn: str, policy: str) -> bytes:
    """SHA-384(domain ‖ keyArn ‖ 0x00 ‖ SHA-384(policy)): what the document's user_data must be."""
    policy_hash = hashlib.sha384(policy.encode("utf-8")).digest()
    return hashlib.sha384(USER_DATA_DOMAIN + key_arn.encode("utf-8") + b"\x00" + policy_hash).digest()


def _ask(ctx: Context, nonce: bytes | None) -> dict:
    """One ``enclave:keyPolicy`` call; the reply's shape is checked, not yet its hashes."""
    options = {"nonce": nonce.hex()} if nonce is not None else {}
    data = expect_success(ctx.client.call(OPERATION, options=options), OPERATION)
    require(isinstance(data, dict), f"{OPERATION}: data must be an object", expected="object", actual=data)
    for name in ("keyArn", "policy", "policySha384"):
        require(isinstance(data.get(name), str) and data[name] != "", f"{OPERATION}: {name} must be a non-empty string",
                expected="string", actual=data.get(name))
    require(_HEX96.fullmatch(data["policySha384"]) is not None, f"{OPERATION}: policySha384 must be 96 lowercase hex",
            expected="96 lowercase hex", actual=data["policySha384"])
    return data


def _attested(ctx: Context) -> tuple[dict, object]:
    """Ask with a fresh nonce and verify the document strictly; cached for the run."""
    if "_kms_attested" in ctx.facts:
        return ctx.facts["_kms_attested"]
    nonce = os.urandom(32)
    data = _ask(ctx, nonce)
    try:
        document = base64.b64decode(data["attestationDocument"], validate=True)
    except (KeyError, TypeError, ValueError):
        raise CheckFailed(f"{OPERATION} with a nonce: no base64 attestationDocument", expected="attestationDocument",
                          actual=sorted(data)) from None
    expect = Expectations(
        nonce=nonce,
        public_key=ctx.client.enclave_public_key,
        user_data=key_policy_user_data(data["keyArn"], data["policy"]),
        pcrs=ctx.options.get("expected_pcrs"),
        allow_debug=ctx.options.get("allow_debug", False),
    )
    try:
        verified = verify(document, roots=ctx.options.get("attestation_roots") or None, at=datetime.now(timezone.utc),
                          expect=expect)
    except AttestationError as error:
        raise CheckFailed(f"key-policy attestation: {error.code.value}: {error}", expected=error.expected,
                          actual=error.actual) from None
    ctx.facts["_kms_attested"] = (data, verified)
    ctx.facts["kms"] = {"keyArn": data["keyArn"], "policySha384": data["policySha384"]}
    return data, verified


@check("kms/key-policy-digest", section="11.6.2", level=Level.MUST,
       requirement="enclave:keyPolicy MUST return keyArn, the exact policy string and policySha384, the SHA-384 "
                   "of the policy's UTF-8 bytes in lowercase hex; with a nonce, the same policy.")
def key_policy_digest(ctx: Context):
    plain = _ask(ctx, None)
    actual = hashlib.sha384(plain["policy"].encode("utf-8")).hexdigest()
    require(plain["policySha384"] == actual, "policySha384 is not the SHA-384 of the policy returned",
            expected=actual, actual=plain["policySha384"])
    with_nonce = _ask(ctx, os.urandom(16))
    require((with_nonce["keyArn"], with_nonce["policy"]) == (plain["keyArn"], plain["policy"]),
            "a call with a nonce returned another key or policy", expected=plain["keyArn"], actual=with_nonce["keyArn"])


@check("kms/key-policy-attested", section="11.6.3", level=Level.MUST,
       requirement="With a nonce, enclave:keyPolicy MUST return an attestation document that passes strict "
                   "verification against the pinned roots, echoes the nonce, attests the Vault's static key and "
                   "whose user_data commits to the key ARN and the policy's SHA-384.")
def key_policy_attested(ctx: Context):
    _attested(ctx)


@check("kms/key-policy-restricts-to-attested-pcrs", section="11.6.4", level=Level.MUST,
       requirement="The attested key policy MUST restrict kms:Decrypt, kms:GenerateDataKey and "
                   "kms:GenerateDataKeyPair to enclaves whose PCRs equal the attested ones: the audit of §11.5 "
                   "reports no finding.")
def key_policy_restricts(ctx: Context):
    data, verified = _attested(ctx)
    try:
        findings = audit_policy(data["policy"], attested_pcrs=dict(verified.pcrs))
    except AuditError as error:
        raise CheckFailed(f"the key policy cannot be audited: {error}", expected="a key policy document",
                          actual=data["policy"][:200]) from None
    require(not findings, f"the key policy is not locked to the attested enclave ({len(findings)} finding(s))",
            expected="no findings", actual=[str(f) for f in findings])
