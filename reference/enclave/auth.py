"""Who is asking (spec §6.2): turn an ``auth`` object into a principal, or refuse."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import OperationCode, OperationError

if TYPE_CHECKING:
    from .access_tokens import Scope

ADMIN_KEY_PREFIX = "sa_adm_"
ROTATION_CODE_PREFIX = "sa_rot_"


@dataclass(frozen=True)
class Principal:
    account_id: str
    kind: str  # "admin" or "accessToken"
    account: dict
    scope: "Scope | None" = None  # an access token's policies (13.4); None: the admin key, unrestricted

    def require(self, component_type: str, facts=None) -> None:
        """``auth_insufficient_scope`` unless the policies allow it (with ``facts``: a component of
        the type holds for them; without: the token has a component of the type at all)."""
        if self.scope is None:
            return
        allowed = self.scope.has_type(component_type) if facts is None else self.scope.allows(component_type, facts)
        if not allowed:
            raise OperationError(OperationCode.AUTH_INSUFFICIENT_SCOPE,
                                 f"no policy of this access token allows {component_type}")

    def may_see(self, component_type: str, facts) -> bool:
        """For lists: an item is shown when the policies allow it (13.4)."""
        return self.scope is None or self.scope.allows(component_type, facts)


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


def authenticate(ctx, request) -> Principal:
    """Resolve the regular ``Auth`` union of ``request``: adminKey, accessToken or sessionToken.

    An access token is checked first (13.4: an invalid token is refused whatever the operation),
    then must be one the operation accepts (``auth_unsupported_operation`` otherwise).
    """
    auth = request.auth
    if not auth:
        raise OperationError(OperationCode.AUTH_MISSING, "this operation requires 'auth'")
    if "adminKey" in auth:
        account = _account_by_secret(ctx, "admin-key", auth["adminKey"])
        if account is None:
            raise OperationError(OperationCode.AUTH_INVALID_ADMIN_KEY, "admin key is not valid")
        return Principal(account["id"], "admin", account)
    if "accessToken" in auth:
        from . import access_tokens

        account, scope = access_tokens.resolve(ctx, auth["accessToken"])
        if request.operation not in access_tokens.TOKEN_OPERATIONS:
            raise OperationError(OperationCode.AUTH_UNSUPPORTED_OPERATION,
                                 f"an access token cannot perform {request.operation}")
        return Principal(account["id"], "accessToken", account, scope)
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
