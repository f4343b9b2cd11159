"""Variants that break one access-token rule each (docs/spec/13-access-tokens.md).

Each patches the reference's policy or token module in the server process only: a policy member
that stops counting, a token state that stops killing, a signed token that is not checked, a
pattern or number compared the wrong way.
"""

from __future__ import annotations

import dataclasses

from tests.mutants.variants import variant


def _without_member(type_: str, member: str):
    """component_holds as if components of ``type_`` had no ``member``."""
    from reference.enclave import policy

    holds = policy.component_holds

    def patched(component, facts):
        if component.type == type_ and member in component.members:
            members = {k: v for k, v in component.members.items() if k != member}
            component = dataclasses.replace(component, members=members)
        return holds(component, facts)

    policy.component_holds = patched


@variant("policy-allowlist-ignored", "§13.6", "tokens/policy-fields",
         "an eoa:signMessage component's allowlist is not checked")
def _(app):
    _without_member("eoa:signMessage", "allowlist")
    return app


@variant("policy-chain-id-ignored", "§13.6", "tokens/policy-fields",
         "an eoa:signMessage component's chainId is not checked")
def _(app):
    _without_member("eoa:signMessage", "chainId")
    return app


@variant("policy-payload-patterns-ignored", "§13.6", "tokens/policy-fields",
         "an eoa:signTransaction component's payloadPatterns are not checked")
def _(app):
    _without_member("eoa:signTransaction", "payloadPatterns")
    return app


@variant("policy-message-pattern-ignored", "§13.6", "tokens/policy-fields",
         "an eoa:signMessage component's messagePattern is not checked")
def _(app):
    _without_member("eoa:signMessage", "messagePattern")
    return app


@variant("policy-pattern-full-match", "§13.5", "tokens/policy-fields",
         "patterns must match the whole value instead of being searched")
def _(app):
    from reference.enclave import policy

    holds = policy.Rule.holds

    def patched(self, subject):
        if self.op is None and subject is not None:
            return self.regex.fullmatch(subject.text) is not None
        return holds(self, subject)

    policy.Rule.holds = patched
    return app


@variant("policy-numbers-as-floats", "§13.5", "tokens/policy-fields",
         "number rules compare as floats (2^64 and 2^64 + 1 are equal)")
def _(app):
    from reference.enclave import policy

    holds = policy.Rule.holds
    ops = {"greaterThan": float.__gt__, "lessThan": float.__lt__, "equalTo": float.__eq__}

    def patched(self, subject):
        if self.op is not None and subject is not None and subject.number is not None:
            return ops[self.op](float(subject.number), float(self.value))
        return holds(self, subject)

    policy.Rule.holds = patched
    return app


@variant("policy-quantities-as-hex", "§13.6", "tokens/policy-fields",
         "patterns on transaction quantities see the hex text, not the decimal digits")
def _(app):
    from reference.enclave import policy

    quantity = policy.Subject.quantity

    def patched(value):
        subject = quantity(value)
        if subject is not None and isinstance(value, str) and value.startswith("0x"):
            return policy.Subject(value.lower(), subject.number)
        return subject

    policy.Subject.quantity = staticmethod(patched)
    return app


@variant("read-filter-ignored", "§13.6", "tokens/read-filter",
         "eoa:list with a token lists every EOA of the account, whatever eoa:read's metadataPatterns say")
def _(app):
    from reference.enclave import auth

    auth.Principal.may_see = lambda self, component_type, facts: True
    return app


@variant("token-expiry-ignored", "§13.4", "tokens/expired", "expired tokens keep working")
def _(app):
    from datetime import datetime, timezone

    from reference.enclave import access_tokens

    access_tokens.parse_timestamp = lambda value: datetime(9999, 1, 1, tzinfo=timezone.utc)
    return app


@variant("token-rotation-ignored", "§6.4", "tokens/rotation-kills",
         "a rotation leaves the account's tokens alive (and isRotated false)")
def _(app):
    from reference.enclave import access_tokens

    access_tokens.is_rotated = lambda record, account: False
    return app


@variant("token-revocation-ignored", "§13.2", "tokens/revoke",
         "a revoked token keeps working (revoke answers revokedAt but nothing checks it)")
def _(app):
    from reference.enclave import access_tokens

    live = access_tokens._live_base_token

    def patched(ctx, token):
        get = ctx.store.get

        def unrevoked(address):
            record = get(address)
            if isinstance(record, dict) and "revokedAt" in record and "digest" in record:
                record = {**record, "revokedAt": None}
            return record

        ctx.store.get = unrevoked
        try:
            return live(ctx, token)
        finally:
            ctx.store.get = get

    access_tokens._live_base_token = patched
    return app


@variant("token-creates-token", "§13.1", "tokens/create-admin-only", "an access token may create access tokens")
def _(app):
    from reference.enclave import access_tokens
    from reference.enclave.auth import authenticate
    from reference.enclave.operations import access_tokens as operations

    access_tokens.TOKEN_OPERATIONS["accessToken:create"] = "accessToken:read"
    operations._admin_only = authenticate
    return app


@variant("signed-token-mac-unchecked", "§13.7", "tokens/signed-token-faults",
         "a signed token's HMAC is not verified")
def _(app):
    import hmac
    import types

    from reference.enclave import access_tokens

    access_tokens.hmac = types.SimpleNamespace(new=hmac.new, compare_digest=lambda a, b: True)
    return app


@variant("signed-token-widens", "§13.7", "tokens/authorization-matrix",
         "a signed token is judged by its own policies only, not also by its base token's")
def _(app):
    from reference.enclave import access_tokens

    resolve = access_tokens.resolve

    def patched(ctx, token):
        account, scope = resolve(ctx, token)
        return account, access_tokens.Scope(scope.layers[-1:])

    access_tokens.resolve = patched
    return app


@variant("scope-denial-wrong-code", "§13.4", "tokens/authorization-matrix",
         "a policy denial is answered auth_invalid_access_token instead of auth_insufficient_scope")
def _(app):
    from reference.enclave import auth
    from reference.enclave.errors import OperationCode, OperationError

    require = auth.Principal.require

    def patched(self, component_type, facts=None):
        try:
            require(self, component_type, facts)
        except OperationError as error:
            raise OperationError(OperationCode.AUTH_INVALID_ACCESS_TOKEN, error.message) from None

    auth.Principal.require = patched
    return app
