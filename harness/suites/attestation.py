"""Attestation of a live target (spec §8.4.1, §8.6, §8.9): verify, don't trust.

Trust roots, expected PCR sets and the debug-mode policy come from the command line
(``--attestation-root``, ``--expected-pcrs``, ``--allow-debug``); the default root is AWS's.
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import datetime, timezone

from ..attestation import AttestationError, Expectations, unsafe_decode_document, verify

from ._util import expect_encrypted_error, expect_success, require
from .registry import CheckFailed, Context, Level, Observation, check

ATTESTATION_PATH = "/api/v1/enclave/attestation"
# The reference's documented user_data commitment (spec §8.4.1): other Vaults may commit otherwise.
USER_DATA_DOMAIN = b"vault-reference/attestation/v1\x00"
MAX_NONCE = 512  # spec §8.3 / §8.9: nonces of 0..512 bytes are accepted, 513 refused
CHALLENGE_SIZES = (0, 1, 16, 32, 33, 64, MAX_NONCE)


def _roots(ctx: Context):
    roots = ctx.options.get("attestation_roots")
    return roots or None  # None: the verifier's pinned AWS Nitro root G1


def _expectations(ctx: Context, nonce: bytes) -> Expectations:
    return Expectations(
        nonce=nonce,
        public_key=ctx.client.enclave_public_key,
        pcrs=ctx.options.get("expected_pcrs"),
        allow_debug=ctx.options.get("allow_debug", False),
    )


def _verify(ctx: Context, document: bytes, nonce: bytes, what: str):
    try:
        return verify(document, roots=_roots(ctx), at=datetime.now(timezone.utc), expect=_expectations(ctx, nonce))
    except AttestationError as error:
        raise CheckFailed(f"{what}: {error.code.value}: {error}", expected=error.expected, actual=error.actual) from None


def _fetch_plain_answer(ctx: Context, nonce: bytes) -> tuple[bytes, dict]:
    """(document bytes, the whole JSON answer) of the GET path."""
    response = ctx.client.get(ATTESTATION_PATH, params={"nonce": nonce.hex()})
    require(response.status_code == 200, f"GET {ATTESTATION_PATH} with a {len(nonce)}-byte nonce", expected=200,
            actual=response.status_code)
    try:
        answer = response.json()
        return base64.b64decode(answer["attestationDocument"], validate=True), answer
    except (ValueError, KeyError, TypeError) as error:
        raise CheckFailed("no base64 attestationDocument in the answer", expected="attestationDocument",
                          actual=response.text[:200]) from error


def _fetch_plain(ctx: Context, nonce: bytes) -> bytes:
    return _fetch_plain_answer(ctx, nonce)[0]


def _fetch_envelope_answer(ctx: Context, nonce: bytes) -> tuple[bytes, dict]:
    exchange = ctx.client.call("enclave:attest", options={"nonce": nonce.hex()})
    data = expect_success(exchange, f"enclave:attest with a {len(nonce)}-byte nonce")
    try:
        return base64.b64decode(data["attestationDocument"], validate=True), data
    except (ValueError, KeyError, TypeError) as error:
        raise CheckFailed("no base64 attestationDocument", expected="attestationDocument", actual=data) from error


def _verify_sized(ctx: Context, document: bytes, nonce: bytes, what: str):
    """Strict verification; an empty challenge may come back as an absent (null) or empty nonce."""
    if nonce:
        return _verify(ctx, document, nonce, what)
    try:
        expect = Expectations(nonce=None, public_key=ctx.client.enclave_public_key,
                              pcrs=ctx.options.get("expected_pcrs"), allow_debug=ctx.options.get("allow_debug", False))
        verified = verify(document, roots=_roots(ctx), at=datetime.now(timezone.utc), expect=expect)
    except AttestationError as error:
        raise CheckFailed(f"{what}: {error.code.value}: {error}", expected=error.expected, actual=error.actual) from None
    echoed = unsafe_decode_document(document).payload.nonce
    require(echoed in (None, b""), f"{what}: an empty challenge came back as a non-empty nonce", expected="null or empty",
            actual=echoed.hex() if echoed else echoed)
    return verified


def _check_public_key_member(ctx: Context, answer: dict, document: bytes, what: str) -> None:
    served = ctx.client.enclave_public_key
    member = answer.get("publicKey")
    require(isinstance(member, str), f"{what}: no publicKey member", expected="hex string", actual=member)
    try:
        member_key = bytes.fromhex(member)
    except ValueError:
        raise CheckFailed(f"{what}: publicKey is not hex", expected="hex", actual=member) from None
    require(member_key == served, f"{what}: publicKey differs from the key GET /api/v1/enclave serves",
            expected=served.hex(), actual=member)
    in_document = unsafe_decode_document(document).payload.public_key
    require(in_document == member_key, f"{what}: publicKey differs from the document's public_key",
            expected=member, actual=in_document.hex() if in_document else in_document)


@check("attestation/plain-document", section="8.9", level=Level.MUST,
       requirement="GET /api/v1/enclave/attestation?nonce= MUST return a document that passes strict verification "
                   "against the pinned root, echoes the nonce and attests the served public key.")
def plain_document(ctx: Context):
    nonce = os.urandom(32)
    verified = _verify(ctx, _fetch_plain(ctx, nonce), nonce, "plain attestation")
    ctx.facts["attestation"] = {
        "moduleId": verified.module_id,
        "rootSha256": verified.root_sha256,
        "debugMode": verified.debug_mode,
        "pcrs": {str(i): v.hex() for i, v in sorted(verified.pcrs.items()) if i in (0, 1, 2, 8)},
    }


@check("attestation/envelope-document", section="8.9", level=Level.MUST,
       requirement="enclave:attest inside the envelope MUST return a document that passes strict verification, "
                   "echoes the nonce and attests the served public key, so a proxy cannot substitute it.")
def envelope_document(ctx: Context):
    nonce = os.urandom(32)
    exchange = ctx.client.call("enclave:attest", options={"nonce": nonce.hex()})
    data = expect_success(exchange, "enclave:attest")
    try:
        document = base64.b64decode(data["attestationDocument"], validate=True)
    except (ValueError, KeyError, TypeError) as error:
        raise CheckFailed("no base64 attestationDocument", expected="attestationDocument", actual=data) from error
    _verify(ctx, document, nonce, "attestation through the envelope")
    ctx.facts["_envelope_attestation"] = (document, exchange.request.ephemeral_public_key)


@check("attestation/user-data-commitment", section="8.9", level=Level.SHOULD,
       requirement="user_data SHOULD be the documented commitment SHA-256(domain ‖ static key ‖ request key), "
                   "binding the document to the request that asked for it.")
def user_data_commitment(ctx: Context):
    if "_envelope_attestation" not in ctx.facts:
        envelope_document(ctx)
    document, request_key = ctx.facts["_envelope_attestation"]
    user_data = unsafe_decode_document(document).payload.user_data  # already verified above
    expected = hashlib.sha256(USER_DATA_DOMAIN + ctx.client.enclave_public_key + request_key).digest()
    require(user_data == expected, "user_data is not the documented commitment", expected=expected.hex(),
            actual=user_data.hex() if user_data else None)


@check("attestation/fresh-per-nonce", section="8.9", level=Level.MUST,
       requirement="Each request MUST get a new document carrying its own nonce (no cached document).")
def fresh_per_nonce(ctx: Context):
    first, second = os.urandom(16), os.urandom(16)
    one, two = _fetch_plain(ctx, first), _fetch_plain(ctx, second)
    require(one != two, "the same document answered two nonces")
    _verify(ctx, two, second, "second document")


@check("attestation/pcrs-expected", section="8.6.7", level=Level.INFO,
       requirement="With --expected-pcrs, the attested PCRs MUST equal one of the given sets (checked by "
                   "attestation/plain-document); without it, the observed PCRs are reported.")
def pcrs_expected(ctx: Context):
    nonce = os.urandom(16)
    verified = _verify(ctx, _fetch_plain(ctx, nonce), nonce, "attestation")
    pcrs = {f"PCR{i}": verified.pcrs[i].hex() for i in (0, 1, 2, 8) if i in verified.pcrs}
    if ctx.options.get("expected_pcrs"):
        raise Observation(f"attested PCRs match an expected set: {pcrs}")
    raise Observation(f"no expected PCRs given; the target attests {pcrs}")


@check("attestation/bad-nonce", section="8.9", level=Level.MUST,
       requirement="A nonce that is not even-length hex, or longer than 512 bytes, MUST be refused: a 4xx "
                   "unencrypted error on the GET, an encrypted invalid_input error through the envelope; never a 5xx.")
def bad_nonce(ctx: Context):
    # Both paths must work for a good nonce first: a Vault without attestation (404, unknown_operation)
    # would otherwise "refuse" every bad nonce and pass.
    good = os.urandom(16)
    _fetch_plain(ctx, good)
    _fetch_envelope_answer(ctx, good)
    for what, nonce in [("odd-length hex", "abc"), ("not hex", "zz"), ("0x prefix", "0x00"), ("inner whitespace", "00\t11"),
                        ("513 bytes", "00" * 513)]:
        response = ctx.client.get(ATTESTATION_PATH, params={"nonce": nonce})
        require(400 <= response.status_code < 500, f"GET with a nonce that is {what}", expected="4xx",
                actual=response.status_code)
        expect_encrypted_error(ctx.client.call("enclave:attest", options={"nonce": nonce}), f"enclave:attest, {what}",
                               code="invalid_input")
    expect_encrypted_error(ctx.client.call("enclave:attest", options={"nonce": 42}), "enclave:attest, nonce not a string",
                           code="invalid_input")


@check("attestation/public-key-member", section="8.9", level=Level.MUST,
       requirement="Both attestation answers MUST carry publicKey equal to the key served by GET /api/v1/enclave "
                   "and to the document's public_key.")
def public_key_member(ctx: Context):
    nonce = os.urandom(32)
    document, answer = _fetch_plain_answer(ctx, nonce)
    _verify(ctx, document, nonce, "plain attestation")
    _check_public_key_member(ctx, answer, document, f"GET {ATTESTATION_PATH}")
    nonce = os.urandom(32)
    document, answer = _fetch_envelope_answer(ctx, nonce)
    _verify(ctx, document, nonce, "attestation through the envelope")
    _check_public_key_member(ctx, answer, document, "enclave:attest")


@check("attestation/challenge-sizes", section="8.9", level=Level.MUST,
       requirement="Challenges of 0, 1, 16, 32, 33, 64 and 512 bytes MUST each get a verifying document echoing "
                   "them, on both paths; 513 bytes MUST be refused (4xx on the GET, an encrypted error inside).")
def challenge_sizes(ctx: Context):
    for size in CHALLENGE_SIZES:
        nonce = os.urandom(size)
        _verify_sized(ctx, _fetch_plain(ctx, nonce), nonce, f"GET, {size}-byte challenge")
        _verify_sized(ctx, _fetch_envelope_answer(ctx, nonce)[0], nonce, f"enclave:attest, {size}-byte challenge")
    over = os.urandom(MAX_NONCE + 1)
    response = ctx.client.get(ATTESTATION_PATH, params={"nonce": over.hex()})
    require(400 <= response.status_code < 500, f"GET with a {MAX_NONCE + 1}-byte challenge", expected="4xx",
            actual=response.status_code)
    expect_encrypted_error(ctx.client.call("enclave:attest", options={"nonce": over.hex()}),
                           f"enclave:attest, {MAX_NONCE + 1}-byte challenge", code="invalid_input")


@check("attestation/same-challenge-distinct", section="8.9", level=Level.MUST,
       requirement="The same challenge asked twice MUST get two distinct, verifying documents (no cached document), "
                   "on both paths.")
def same_challenge_distinct(ctx: Context):
    nonce = os.urandom(32)
    for what, fetch in (("GET", lambda: _fetch_plain(ctx, nonce)),
                        ("enclave:attest", lambda: _fetch_envelope_answer(ctx, nonce)[0])):
        one, two = fetch(), fetch()
        require(one != two, f"{what}: the same document answered the same challenge twice")
        _verify(ctx, one, nonce, f"{what}, first document")
        _verify(ctx, two, nonce, f"{what}, second document")
