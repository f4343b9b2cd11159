"""``enclave:keyPolicy`` (spec §11.4): the master key's policy, exactly as KMS returns it.

Reply data: ``keyArn``, ``policy`` (the GetKeyPolicy string, never re-serialised),
``policySha384`` (hex of SHA-384 over its UTF-8 bytes) and, when the caller sends a non-empty
``nonce``, ``attestationDocument`` whose ``user_data`` commits to the ARN and that hash, so a host
in between cannot substitute a policy.
"""

from __future__ import annotations

import base64
import hashlib

from ..attestation import nonce_option
from ..errors import OperationCode, OperationError
from ..kms import KmsBootError, KmsDenied, KmsUnreachable
from ..nsm import NsmError, NsmInputTooLarge, NsmInvalidInput

USER_DATA_DOMAIN = b"vault-reference/key-policy/v1\x00"


def user_data_commitment(key_arn: str, policy: str) -> bytes:
    policy_hash = hashlib.sha384(policy.encode("utf-8")).digest()
    return hashlib.sha384(USER_DATA_DOMAIN + key_arn.encode("utf-8") + b"\x00" + policy_hash).digest()


def key_policy(ctx, request) -> dict:
    source = ctx.extras.get("key_policy")
    if source is None:
        raise OperationError(OperationCode.UNSUPPORTED, "this Vault's master key is not held in KMS")
    nonce = nonce_option(request)
    try:
        policy = source.fetch(source.key_arn)
    except KmsBootError as error:
        cause = ("kms_unreachable" if isinstance(error, KmsUnreachable)
                 else "kms_access_denied" if isinstance(error, KmsDenied) else "kms_error")
        raise OperationError(OperationCode.INTERNAL_SERVER_ERROR, error.cause, {"cause": cause}) from None
    data = {"keyArn": source.key_arn, "policy": policy,
            "policySha384": hashlib.sha384(policy.encode("utf-8")).hexdigest()}
    if nonce:
        nsm = ctx.extras.get("nsm")
        if nsm is None:
            raise OperationError(OperationCode.UNSUPPORTED, "this Vault has no attestation source")
        try:
            document = nsm.attest(user_data=user_data_commitment(source.key_arn, policy), nonce=nonce,
                                  public_key=ctx.enclave.public_key)
        except (NsmInputTooLarge, NsmInvalidInput) as error:
            raise OperationError(OperationCode.INVALID_INPUT, error.message) from None
        except NsmError:
            raise OperationError(OperationCode.INTERNAL_SERVER_ERROR, "the NSM could not attest") from None
        data["attestationDocument"] = base64.b64encode(document).decode()
    return data
