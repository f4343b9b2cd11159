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


def admin_key_index(ctx, admin_key: str) -> bytes:
    return ctx.store.address("admin-key", ctx.keyring.secret_digest("admin-key", admin_key).hex())


def rotation_code_index(ctx, code: str) -> bytes:
    return ctx.store.address("rotation-code", ctx.keyring.secret_digest("rotation-code", code).hex())


def account_address(ctx, account_id: str) -> bytes:
    return ctx.store.address("service-account", account_id)


def _account_by_index(ctx, index: bytes, secret: str, field: str) -> dict | None:
    link = ctx.store.get(index)
    if link is None:
        return None
    account = ctx.store.get(account_address(ctx, link["accountId"]))
    # Defence in depth: the link must still point at the account's *current* secret digest.
    if account is None or not hmac.compare_digest(account[field], ctx.keyring.secret_digest(field, secret).hex()):
        return None
    return account


def authenticate(ctx, auth: dict | None) -> Principal:
    """Resolve the regular ``Auth`` union: adminKey, accessToken or sessionToken."""
    if not auth:
        raise OperationError(OperationCode.AUTH_MISSING, "this operation requires 'auth'")
    if "adminKey" in auth:
        key = auth["adminKey"]
        account = _account_by_index(ctx, admin_key_index(ctx, key), key, "admin-key") if isinstance(key, str) else None
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
    code = (auth or {}).get("rotationCode")
    account = _account_by_index(ctx, rotation_code_index(ctx, code), code, "rotation-code") if isinstance(code, str) else None
    if account is None:
        raise OperationError(OperationCode.AUTH_INVALID_ROTATION_CODE, "rotation code is not valid")
    return account
