"""Access tokens (docs/spec/13-access-tokens.md 13.1-13.3): create, list, revoke.

The token is returned once and stored only as its keyed digest (6.5); the sealed record keeps its
policies as the caller sent them, its expiry, metadata, the account's rotation epoch at issue
(a later rotation kills it: ``isRotated``), and a hint (the last four hex digits) for lists.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone

from .. import policy
from ..access_tokens import (
    SECRET_KIND,
    TOKEN_PREFIX,
    is_rotated,
    owner_group,
    secret_index,
    token_address,
)
from ..auth import authenticate
from ..errors import OperationCode, OperationError
from ..limits import check_policies_size
from ..service import iso8601
from .eoa import _metadata, _options, page_of

ISSUER_TYPE = "serviceAccount"
# RFC 3339 date-time with a zone; fromisoformat alone also takes dates, week dates and no zone.
_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def _invalid(message: str) -> OperationError:
    return OperationError(OperationCode.INVALID_INPUT, message)


def _admin_only(ctx, request):
    principal = authenticate(ctx, request)
    if principal.scope is not None:
        raise OperationError(OperationCode.AUTH_UNSUPPORTED_OPERATION,
                             f"only the admin key may perform {request.operation}")
    return principal


def _expiry(ctx, value: object) -> datetime:
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _invalid("options.expiresAt must be an RFC 3339 date-time with a time zone")
    date, time, fraction, zone = match.groups()
    fraction = (fraction or "")[:7]  # microseconds: datetime holds no more
    zone = "+00:00" if zone in "Zz" else zone
    try:
        moment = datetime.fromisoformat(f"{date}T{time}{fraction}{zone}")
    except ValueError:
        raise _invalid("options.expiresAt is not a valid date-time") from None
    if moment <= ctx.now():
        raise _invalid("options.expiresAt must be in the future")
    return moment.astimezone(timezone.utc)


def _data(record: dict, account: dict, token: str | None = None) -> dict:
    """Access token data (13.3); ``token`` only in the answer to create."""
    return {
        "accessToken": token if token is not None else TOKEN_PREFIX + "…" + record["hint"],
        "id": record["id"],
        "issuerId": record["accountId"],
        "issuerType": ISSUER_TYPE,
        "policies": record["policies"],
        "expiresAt": record["expiresAt"],
        "metadata": record["metadata"],
        "createdAt": record["createdAt"],
        "updatedAt": record["updatedAt"],
        "revokedAt": record["revokedAt"],
        "isRotated": is_rotated(record, account),
    }


def create(ctx, request) -> dict:
    principal = _admin_only(ctx, request)
    options = _options(request)
    try:
        policy.parse_policies(options.get("policies"), "options.policies")
        check_policies_size(options["policies"])
    except policy.PolicyError as exc:
        raise _invalid(str(exc)) from None
    expires_at = _expiry(ctx, options.get("expiresAt"))
    metadata = _metadata(options)
    token = TOKEN_PREFIX + ctx.random_bytes(32).hex()
    now = ctx.timestamp()
    record = {
        "id": str(uuid.UUID(bytes=ctx.random_bytes(16), version=4)),
        "accountId": principal.account_id,
        "epoch": principal.account["epoch"],
        "digest": ctx.keyring.secret_digest(SECRET_KIND, token).hex(),
        "hint": token[-4:],
        "policies": options["policies"],
        "expiresAt": iso8601(expires_at),
        "metadata": metadata,
        "createdAt": now,
        "updatedAt": now,
        "revokedAt": None,
    }
    with ctx.store.transaction():
        ctx.store.put(secret_index(ctx, record["digest"]), {"tokenId": record["id"]})
        ctx.store.put(token_address(ctx, record["id"]), record, owner_group(ctx, principal.account_id))
    return _data(record, principal.account, token)


def list_tokens(ctx, request) -> dict:
    principal = authenticate(ctx, request)
    principal.require("accessToken:read")
    records = ctx.store.group(owner_group(ctx, principal.account_id))  # creation order
    visible = [r for r in records
               if principal.may_see("accessToken:read", policy.Facts(metadata=r["metadata"], options=request.options))]
    return page_of(request, visible, lambda r: _data(r, principal.account))


def revoke(ctx, request) -> dict:
    principal = _admin_only(ctx, request)
    token_id = _options(request).get("id")
    if not isinstance(token_id, str):
        raise _invalid("options.id must be a string")
    with ctx.store.transaction():
        record = ctx.store.get(token_address(ctx, token_id))
        if record is None or record["accountId"] != principal.account_id:
            raise OperationError(OperationCode.NOT_FOUND, "no such access token for this account")
        if record["revokedAt"] is None:
            record["revokedAt"] = record["updatedAt"] = ctx.timestamp()
            ctx.store.put(token_address(ctx, token_id), record, owner_group(ctx, principal.account_id))
    return _data(record, principal.account)


OPERATIONS = {
    "accessToken:create": create,
    "accessToken:list": list_tokens,
    "accessToken:revoke": revoke,
}
