"""Who is asking (spec §6.2): turn an ``auth`` object into a principal, or refuse."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from .errors import OperationCode, OperationError

ADMIN_KEY_PREFIX = "sa_adm_"
ROTATION_CODE_PREFIX = "sa_rot_"


@dataclass(frozen=True)
class Principal:
    account_id: str
    kind: str  # "admin" or "accessToken"
    account: dict


def secret_index(ctx, kind: str, digest_hex: str) -> bytes:
    """Address of the link from a secret's keyed digest to its account ("admin-key", "rotation-code")."""
    return ctx.store.address(kind, digest_hex)


def account_address(ctx, account_id: str) -> bytes:
    return ctx.store.address("service-account", account_id)


def _account_by_secret(ctx, kind: str, secret: object) -> dict | None:
    if not isinstance(secret, str):
        return None
    digest = ctx.keyring.secret_digest(kind, secret).hex()
    link = ctx.store.get(secret_index(ctx, kind, digest))
    if link is None:
        return None
    account = ctx.store.get(account_address(ctx, link["accountId"]))
    # Defence in depth: the link must still point at the account's *current* secret digest.
    if account is None or not hmac.compare_digest(account[kind], digest):
        return None
    return account


def authenticate(ctx, auth: dict | None) -> Principal:
    """Resolve the regular ``Auth`` union: adminKey, accessToken or sessionToken."""
    if not auth:
        raise OperationError(OperationCode.AUTH_MISSING, "this operation requires 'auth'")
    if "adminKey" in auth:
        account = _account_by_secret(ctx, "admin-key", auth["adminKey"])
        if account is None:
            raise OperationError(OperationCode.AUTH_INVALID_ADMIN_KEY, "admin key is not valid")
        return Principal(account["id"], "admin", account)
    if "accessToken" in auth:
        validate = ctx.extras.get("access_token_validator")
        if validate is None:
            raise OperationError(OperationCode.AUTH_INVALID_ACCESS_TOKEN, "access token is not valid")
        return validate(ctx, auth["accessToken"])
    if "sessionToken" in auth:
        raise OperationError(
            OperationCode.AUTH_UNSUPPORTED_METHOD, "session tokens are not supported by this Vault"
        )
    if "rotationCode" in auth:
        raise OperationError(
            OperationCode.AUTH_UNSUPPORTED_METHOD, "a rotation code authorises only serviceAccount:rotate"
        )
    raise OperationError(OperationCode.AUTH_MISSING, "auth must hold adminKey, accessToken or sessionToken")


def account_by_rotation_code(ctx, auth: dict | None) -> dict:
    account = _account_by_secret(ctx, "rotation-code", (auth or {}).get("rotationCode"))
    if account is None:
        raise OperationError(OperationCode.AUTH_INVALID_ROTATION_CODE, "rotation code is not valid")
    return account
