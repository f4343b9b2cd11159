"""Attestation on request (spec §8.4.1, §8.9): the document binds the enclave's static key and a nonce.

``public_key`` = the X25519 key served by ``GET /api/v1/enclave``; ``nonce`` = the caller's
challenge; ``user_data`` = SHA-256(domain ‖ static public key ‖ binding), where the binding is the
request's ephemeralPublicKey when asked through the envelope (so the document was made for *this*
request) and empty on the plain GET.
"""

from __future__ import annotations

import base64
import hashlib

from .envelope import unhex
from .errors import EnvelopeCode, EnvelopeError, OperationCode, OperationError
from .nsm import NsmError, NsmInputTooLarge, NsmInvalidInput

USER_DATA_DOMAIN = b"vault-reference/attestation/v1\x00"


def user_data_commitment(static_public: bytes, binding: bytes = b"") -> bytes:
    return hashlib.sha256(USER_DATA_DOMAIN + static_public + binding).digest()


def attest(nsm, static_public: bytes, nonce: bytes | None, binding: bytes = b"") -> dict:
    document = nsm.attest(
        user_data=user_data_commitment(static_public, binding), nonce=nonce, public_key=static_public
    )
    return {"attestationDocument": base64.b64encode(document).decode(), "publicKey": static_public.hex()}


def plain_attest(nsm, static_public: bytes, nonce: bytes) -> dict:
    """For the plain GET: input errors become unencrypted 4xx errors."""
    try:
        return attest(nsm, static_public, nonce or None)
    except (NsmInputTooLarge, NsmInvalidInput) as error:
        raise EnvelopeError(EnvelopeCode.INVALID_INPUT, error.message) from None


def nonce_option(request) -> bytes:
    """The optional ``options.nonce`` of an operation that answers with a document (empty: none)."""
    nonce_hex = request.options.get("nonce", "")
    nonce = unhex(nonce_hex) if isinstance(nonce_hex, str) else None
    if nonce is None:
        raise OperationError(OperationCode.INVALID_INPUT, "options.nonce must be even-length hex")
    return nonce


def operation_attest(ctx, request) -> dict:
    """``enclave:attest {nonce?: hex}``, answered inside the envelope."""
    nsm = ctx.extras.get("nsm")
    if nsm is None:
        raise OperationError(OperationCode.UNSUPPORTED, "this Vault has no attestation source")
    nonce = nonce_option(request)
    try:
        answer = attest(nsm, ctx.enclave.public_key, nonce or None, binding=request.client_public_key)
    except (NsmInputTooLarge, NsmInvalidInput) as error:
        raise OperationError(OperationCode.INVALID_INPUT, error.message) from None
    except NsmError:
        raise OperationError(OperationCode.INTERNAL_SERVER_ERROR, "the NSM could not attest") from None
    # Which epoch's static key this is (spec 10.7.3): a leak of one epoch's secret exposes the
    # requests sealed under that epoch's key only.
    answer["keyEpoch"] = ctx.enclave.static_key_epoch
    return answer
