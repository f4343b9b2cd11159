"""Variants that break one Solana rule each (docs/spec/14-solana.md): a transactionPatterns member
that stops counting, lookup-table accounts trusted, a component member ignored, the wrong bytes
signed, a bad input accepted."""

from __future__ import annotations

import dataclasses

from tests.mutants.variants import variant


def _without_pattern(field: str):
    """solana:signTransaction as if its transactionPatterns had no ``field``."""
    from reference.enclave import policy

    holds = policy._solana_transaction_holds

    def patched(patterns, tx, signer):
        if patterns is not None:
            patterns = dataclasses.replace(patterns, **{field: policy.TransactionPatterns.__dataclass_fields__[field].default})
        return holds(patterns, tx, signer)

    policy._solana_transaction_holds = patched


for _field, _name in (("programs", "programs"), ("writable_accounts", "writable-accounts"),
                      ("required_cosigners", "required-cosigners"), ("max_instructions", "max-instructions"),
                      ("can_pay_fees", "can-pay-fees")):
    def _patch(app, field=_field):
        _without_pattern(field)
        return app

    variant(f"solana-{_name}-ignored", "§14.4", "solana/transaction-patterns",
            f"transactionPatterns.{_field} of a solana:signTransaction component is not checked")(_patch)


@variant("solana-lookup-tables-trusted", "§14.4", "solana/transaction-patterns",
         "writable accounts loaded from lookup tables are ignored by writableAccounts rules")
def _(app):
    from reference.enclave import policy

    holds = policy._solana_transaction_holds
    policy._solana_transaction_holds = lambda patterns, tx, signer: holds(
        patterns, None if tx is None else dataclasses.replace(tx, unresolved_writable=0), signer)
    return app


@variant("solana-message-allowlist-ignored", "§14.4", "solana/component-policies",
         "a solana:signMessage component's allowlist is not checked")
def _(app):
    from reference.enclave import policy

    holds = policy.component_holds

    def patched(component, facts):
        if component.type == "solana:signMessage" and "allowlist" in component.members:
            component = dataclasses.replace(component, members={k: v for k, v in component.members.items()
                                                                 if k != "allowlist"})
        return holds(component, facts)

    policy.component_holds = patched
    return app


@variant("solana-signs-whole-transaction", "§14.3", "solana/sign-transaction",
         "solana:signTransaction signs the whole wire transaction instead of its message")
def _(app):
    import base64

    from reference.enclave import solana

    parse = solana.parse_transaction

    def patched(value):
        parsed = parse(value)
        return dataclasses.replace(parsed, message=base64.b64decode(value))

    solana.parse_transaction = patched
    return app


@variant("solana-hex-as-text", "§14.2", "solana/sign-message",
         "solana:signMessage signs a hex message's text, not its bytes")
def _(app):
    from reference.enclave import solana

    solana.message_bytes = lambda message, message_format: message.encode() if isinstance(message, str) else b""
    return app


@variant("solana-trailing-bytes-accepted", "§14.3", "solana/sign-transaction-invalid",
         "bytes after the transaction are ignored instead of refused")
def _(app):
    import base64

    from reference.enclave import solana

    parse = solana.parse_transaction

    def patched(value):
        if isinstance(value, str):
            try:
                raw = base64.b64decode(value, validate=True)
                from solders.transaction import VersionedTransaction

                value = base64.b64encode(bytes(VersionedTransaction.from_bytes(raw))).decode() if raw else value
            except Exception:
                pass
        return parse(value)

    solana.parse_transaction = patched
    return app


@variant("solana-other-accounts-visible", "§14.1", "solana/list",
         "solana:list shows every account's keys")
def _(app):
    from reference.enclave.operations import solana as ops

    ops._owner_group = lambda ctx, account_id: ctx.store.address("solana-owner", "everyone")
    return app


@variant("solana-list-without-read-scope", "§14.4", "solana/authorization-matrix",
         "solana:list answers a token with no solana:read component (an empty page) instead of refusing it")
def _(app):
    from reference.enclave import auth

    require = auth.Principal.require

    def patched(self, component_type, facts=None):
        if component_type == "solana:read" and facts is None:
            return None
        return require(self, component_type, facts)

    auth.Principal.require = patched
    return app


@variant("solana-create-drops-metadata", "§14.1", "solana/create",
         "solana:create answers empty metadata instead of what was sent")
def _(app):
    from tests.mutants.variants import _ops, _on

    return _ops(app, after=_on("solana:create", lambda request, data: {**data, "metadata": {}}))


@variant("solana-unknown-key-invalid-input", "§14.2", "solana/choose-key",
         "a from that is not the caller's key is answered invalid_input instead of not_found")
def _(app):
    from tests.mutants.variants import _ops

    def after(request, reply):
        if str(request.get("operation", "")).startswith("solana:sign") and not reply.get("success") \
                and reply["error"]["code"] == "not_found":
            reply["error"]["code"] = "invalid_input"
        return reply

    return _ops(app, after=after)


@variant("solana-max-instructions-off-by-one", "§14.4", "solana/policy-property",
         "maxInstructions allows one instruction more than it names")
def _(app):
    from reference.enclave import policy

    holds = policy._solana_transaction_holds

    def patched(patterns, tx, signer):
        if patterns is not None and patterns.max_instructions is not None:
            patterns = dataclasses.replace(patterns, max_instructions=patterns.max_instructions + 1)
        return holds(patterns, tx, signer)

    policy._solana_transaction_holds = patched
    return app
