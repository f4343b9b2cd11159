"""The researchers' property suite (spec §10): what the protocol does not guarantee, one INFO
check a property, each observing whether the target offers the opt-in mitigation of 10.7.

Every observation starts with ``EXPOSED:`` or ``MITIGATED:`` and says why in a sentence; the
same word is recorded in the report's facts (``securityProperties``), so a researcher can compare
Vaults, or one Vault with a mitigation switched on and off. Per-request forward secrecy (10.1),
which the protocol does guarantee, is the MUST check ``e2e/forward-secrecy``.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import datetime, timezone

from ..attestation import AttestationError, Expectations, verify
from ..protocol import envelope

from ._util import bound_exchange, request_bytes
from .registry import Context, Level, Observation, check

ATTESTATION_PATH = "/api/v1/enclave/attestation"


def _verdict(ctx: Context, check_id: str, mitigated: bool, explanation: str) -> Observation:
    ctx.facts.setdefault("securityProperties", {})[check_id] = {
        "state": "MITIGATED" if mitigated else "EXPOSED", "explanation": explanation}
    return Observation(f"{'MITIGATED' if mitigated else 'EXPOSED'}: {explanation}")


@check("security/replay", section="10.3", level=Level.INFO,
       requirement="The protocol has no replay protection: a captured request may be posted again. "
                   "A Vault MAY refuse a reused ephemeralPublicKey (the reference's opt-in replay window, 10.7.1).")
def replay(ctx: Context):
    plaintext = request_bytes("serviceAccount:create", {"metadata": {"probe": "replay"}})
    secret, sealed = ctx.client.seal(plaintext)
    first = ctx.client.read_reply(plaintext, secret, sealed, ctx.client.post_raw(sealed.to_bytes()))
    second = ctx.client.read_reply(plaintext, secret, sealed, ctx.client.post_raw(sealed.to_bytes()))
    if first.ok and second.ok:
        raise _verdict(ctx, "security/replay", False,
                       f"a captured serviceAccount:create posted again ran twice (ids {first.data.get('id')} and "
                       f"{second.data.get('id')}): whoever sees a request can repeat its effect")
    raise _verdict(ctx, "security/replay", True,
                   f"the repeated request was refused (HTTP {second.status}, "
                   f"{second.error_code or second.unencrypted_error}); a window bounded by memory still lets a "
                   "replay through once it has moved on, or on another instance")


@check("security/response-forgery", section="10.4", level=Level.INFO,
       requirement="Responses are not authenticated: anyone who sees a request can seal a reply to its key. "
                   "A caller's responseBinding echoed inside the reply (10.7.2) lets it detect a forgery.")
def response_forgery(ctx: Context):
    # 1. What the host can do: a reply sealed by a party that only saw the request opens like a real one.
    plaintext = request_bytes("ping", {"message": "genuine"})
    secret, sealed = ctx.client.seal(plaintext)
    forged_reply = b'{"success":true,"data":{"pong":"forged","timestamp":0},"error":null}'
    forged = envelope.seal(sealed.ephemeral_public_key, forged_reply, ephemeral_secret=os.urandom(32),
                           nonce=os.urandom(24))
    accepted = json.loads(envelope.open_envelope(forged, secret))["data"]["pong"] == "forged"
    # 2. The mitigation: a secret only the enclave can read, echoed inside the genuine reply.
    genuine, binding = bound_exchange(ctx.client, "ping", {"message": "bound"})
    echoed = isinstance(genuine.reply, dict) and genuine.reply.get("responseBinding") == binding
    shown = "a reply forged without the enclave opened and was accepted by the envelope alone" if accepted else \
        "(the forged reply did not open: harness defect)"
    if echoed:
        raise _verdict(ctx, "security/response-forgery", True,
                       f"{shown}; the target echoes a caller's responseBinding inside the encrypted reply, which a "
                       "forger never saw, so a caller that sends one and checks the echo detects the forgery")
    raise _verdict(ctx, "security/response-forgery", False,
                   f"{shown}; the target does not echo responseBinding, so nothing in a reply tells a caller it "
                   "came from the enclave")


@check("security/static-key-exposure", section="10.2", level=Level.INFO,
       requirement="Whoever learns the static secret opens every request sealed to its key. Key epochs (10.7.3) "
                   "limit a leak to one epoch's requests.")
def static_key_exposure(ctx: Context):
    # The property itself, shown with a key pair of the harness's own: a recorded request opens with s.
    s = os.urandom(32)
    recorded = envelope.seal(envelope.public_key(s), b'{"operation":"ping"}', ephemeral_secret=os.urandom(32),
                             nonce=os.urandom(24))
    opened = envelope.open_envelope(recorded, s) == b'{"operation":"ping"}'
    exchange = ctx.client.call("enclave:attest", options={"nonce": os.urandom(16).hex()})
    epoch = exchange.data.get("keyEpoch") if exchange.ok and isinstance(exchange.data, dict) else None
    prefix = "a request recorded under S opens with s alone" if opened else "(harness defect: s did not open)"
    if isinstance(epoch, int) and not isinstance(epoch, bool):
        raise _verdict(ctx, "security/static-key-exposure", True,
                       f"{prefix}; the target names key epoch {epoch} in its attested answer, so S changes with "
                       "the epoch and a leaked s exposes that epoch's requests only, provided older epochs' "
                       "secrets are erased (the reference derives each epoch's key from the master key: a master "
                       "key leak still exposes every epoch)")
    raise _verdict(ctx, "security/static-key-exposure", False,
                   f"{prefix}; the target names no key epoch, so one leak of s exposes every request ever "
                   "recorded under S, and every bearer secret in them")


@check("security/unattested-key", section="10.5", level=Level.INFO,
       requirement="The published client trusts GET /api/v1/enclave without attestation. A client that first "
                   "verifies a document attesting S (section 8) is safe from a host that swaps the key.")
def unattested_key(ctx: Context):
    nonce = os.urandom(32)
    why = ""
    try:
        response = ctx.client.get(ATTESTATION_PATH, params={"nonce": nonce.hex()})
        document = base64.b64decode(response.json()["attestationDocument"], validate=True)
        verified = verify(document, roots=ctx.options.get("attestation_roots") or None, at=datetime.now(timezone.utc),
                          expect=Expectations(nonce=nonce, public_key=ctx.client.enclave_public_key,
                                              pcrs=ctx.options.get("expected_pcrs"),
                                              allow_debug=ctx.options.get("allow_debug", False)))
    except AttestationError as error:
        verified, why = None, f"{error.code.value}: {error}"
    except (ValueError, KeyError, TypeError) as error:
        verified, why = None, f"no attestation document ({type(error).__name__})"
    if verified is not None:
        raise _verdict(ctx, "security/unattested-key", True,
                       "the published client does not verify, but this target's S is attested by a document that "
                       "verifies against the pinned root with a fresh nonce: a client that checks it before "
                       "sending anything cannot be handed another key")
    raise _verdict(ctx, "security/unattested-key", False,
                   f"S could not be attested here ({why[:160]}): a client has only the host's word for the key "
                   "it encrypts to")
