"""Access tokens as credentials (docs/spec/13-access-tokens.md 13.4, 13.7): find, check, scope.

A base token (``vt_act_…``) is stored only as its keyed digest (6.5): one sealed record per token
at the HMAC address of ("access-token", id), an index from the digest to the id, and the account's
tokens grouped under ("access-token-owner", account id). A signed token (``vt_sat_`` + JWS) is
never stored: it carries its base token encrypted to the enclave's static key, and is accepted
only after every step of 13.7.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

from . import envelope, policy
from .errors import EnvelopeError, OperationCode, OperationError

TOKEN_PREFIX = "vt_act_"
SIGNED_TOKEN_PREFIX = "vt_sat_"
SECRET_KIND = "access-token"

# Operations an access token may perform, with the component type that scopes each (13.4).
TOKEN_OPERATIONS = {
    "eoa:create": "eoa:create",
    "eoa:list": "eoa:read",
    "eoa:signMessage": "eoa:signMessage",
    "eoa:signTypedData": "eoa:signTypedData",
    "eoa:signTransaction": "eoa:signTransaction",
    "eoa:signAuthorization": "eoa:signAuthorization",
    "eoa:signStructuredMessage": "eoa:signStructuredMessage",
    "accessToken:list": "accessToken:read",
    "solana:create": "solana:create",
    "solana:list": "solana:read",
    "solana:signMessage": "solana:signMessage",
    "solana:signTransaction": "solana:signTransaction",
}

_JWS_HEADER = {"alg": "HS256"}
_CLAIMS = {"encrypted_token", "ephemeral_public_key", "nonce", "exp", "iat", "policies"}


def token_address(ctx, token_id: str) -> bytes:
    return ctx.store.address("access-token", token_id)


def owner_group(ctx, account_id: str) -> bytes:
    return ctx.store.address("access-token-owner", account_id)


def secret_index(ctx, digest_hex: str) -> bytes:
    return ctx.store.address(SECRET_KIND, digest_hex)


def parse_timestamp(value: str) -> datetime:
    """The stored ISO timestamps (6.1) back as aware datetimes."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def is_rotated(record: dict, account: dict) -> bool:
    return record["epoch"] != account["epoch"]


def _invalid(reason: str) -> OperationError:
    return OperationError(OperationCode.AUTH_INVALID_ACCESS_TOKEN, f"access token is not valid: {reason}")


@dataclass(frozen=True)
class Scope:
    """The policy layers a request must satisfy: the base token's, and a signed token's on top."""

    layers: tuple[tuple[policy.Component, ...], ...]

    def has_type(self, component_type: str) -> bool:
        return all(policy.has_type(layer, component_type) for layer in self.layers)

    def allows(self, component_type: str, facts: policy.Facts) -> bool:
        return all(policy.allows(layer, component_type, facts) for layer in self.layers)


def _live_base_token(ctx, token: str) -> tuple[dict, dict]:
    """The record and account of a base token 13.4 accepts, or ``auth_invalid_access_token``."""
    digest = ctx.keyring.secret_digest(SECRET_KIND, token).hex()
    link = ctx.store.get(secret_index(ctx, digest))
    record = None if link is None else ctx.store.get(token_address(ctx, link["tokenId"]))
    if record is None or not hmac.compare_digest(record["digest"], digest):
        raise _invalid("unknown token")
    account = ctx.store.get(ctx.store.address("service-account", record["accountId"]))
    if account is None or is_rotated(record, account):
        raise _invalid("the issuing account has rotated since")
    if record["revokedAt"] is not None:
        raise _invalid("revoked")
    if ctx.now() >= parse_timestamp(record["expiresAt"]):
        raise _invalid("expired")
    return record, account


def _b64url(part: str) -> bytes:
    # RFC 7515 base64url without padding; b64decode would skip characters outside the alphabet.
    if not part or "=" in part or not all(c.isascii() and (c.isalnum() or c in "-_") for c in part):
        raise _invalid("malformed signed token")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise _invalid("malformed signed token") from None


def _json_object(raw: bytes) -> dict:
    def no_duplicates(pairs):
        obj = dict(pairs)
        if len(obj) != len(pairs):
            raise ValueError("duplicate member")
        return obj

    try:
        obj = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _invalid("malformed signed token") from None
    if not isinstance(obj, dict):
        raise _invalid("malformed signed token")
    return obj


def _signed_token(ctx, token: str) -> tuple[dict, dict, tuple[policy.Component, ...]]:
    """13.7, every step: syntax, the base token inside, the HMAC, the expiry."""
    parts = token[len(SIGNED_TOKEN_PREFIX):].split(".")
    if len(parts) != 3:
        raise _invalid("malformed signed token")
    header, claims, signature = (_b64url(p) for p in parts)
    if _json_object(header) != _JWS_HEADER:
        raise _invalid('the signed token header must be exactly {"alg":"HS256"}')
    claims = _json_object(claims)
    if set(claims) != _CLAIMS or any(type(claims[k]) is not int for k in ("exp", "iat")):
        raise _invalid("the signed token's claims are not those of 13.7")
    try:
        sealed = envelope.Envelope.from_json({"ephemeralPublicKey": claims["ephemeral_public_key"],
                                              "nonce": claims["nonce"], "ciphertext": claims["encrypted_token"]})
        base = envelope.open_envelope(sealed, ctx.keyring.static_secret).decode("utf-8")
    except (EnvelopeError, UnicodeDecodeError):
        raise _invalid("the encrypted base token does not open") from None
    if not base.startswith(TOKEN_PREFIX):
        raise _invalid("a signed token must carry a base access token")
    record, account = _live_base_token(ctx, base)
    signing_input = (parts[0] + "." + parts[1]).encode()
    expected = hmac.new(hashlib.sha256(base.encode()).digest(), signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise _invalid("bad signature")
    if ctx.now().timestamp() >= claims["exp"]:
        raise _invalid("expired")
    try:
        narrowing = policy.parse_policies(claims["policies"], "policies", allow_empty=True)
    except policy.PolicyError as exc:
        raise _invalid(str(exc)) from None
    return record, account, narrowing


def resolve(ctx, token: object) -> tuple[dict, Scope]:
    """The issuing account and the scope of ``auth.accessToken``, or ``auth_invalid_access_token``."""
    if not isinstance(token, str):
        raise _invalid("not a string")
    if token.startswith(SIGNED_TOKEN_PREFIX):
        record, account, narrowing = _signed_token(ctx, token)
        layers = (stored_policies(record), narrowing)
    else:
        record, account = _live_base_token(ctx, token)
        layers = (stored_policies(record),)
    return account, Scope(layers)


def stored_policies(record: dict) -> tuple[policy.Component, ...]:
    # Parsed again from the stored JSON (they were valid at creation): compiled patterns are not
    # JSON, and re-parsing costs microseconds next to the request's X25519.
    return policy.parse_policies(record["policies"])
