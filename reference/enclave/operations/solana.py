"""Solana accounts (docs/spec/14-solana.md): create, list, and ed25519 signing inside the enclave.

Laid out like the EOAs (operations/eoa.py): one sealed record per key at the HMAC address of
("solana", base58 public key), holding its seed, metadata and owning account, grouped under
("solana-owner", account id). Another account's key is answered as one that does not exist.
"""

from __future__ import annotations

from .. import policy
from ..auth import authenticate
from ..errors import OperationCode, OperationError
from .eoa import _invalid, _metadata, _options, page_of

def _solana():
    """Loaded on the first Solana operation: solders is not needed by a Vault that never sees one."""
    from .. import solana

    return solana


def _parsed(parse, *args):
    """``parse(*args)`` from the Solana module, its input errors answered as invalid_input."""
    try:
        return parse(*args)
    except _solana().SolanaInputError as exc:
        raise _invalid(str(exc)) from None


def _key_address(ctx, pubkey: str) -> bytes:
    return ctx.store.address("solana", pubkey)


def _owner_group(ctx, account_id: str) -> bytes:
    return ctx.store.address("solana-owner", account_id)


def _public(record: dict) -> dict:
    return {k: record[k] for k in ("pubkey", "metadata", "createdAt", "updatedAt")}


def create(ctx, request) -> dict:
    principal = authenticate(ctx, request)
    metadata = _metadata(_options(request))
    principal.require("solana:create", policy.Facts(metadata=metadata, options=request.options))
    seed = _solana().new_seed(ctx.random_bytes)
    now = ctx.timestamp()
    record = {
        "pubkey": _solana().base58(_solana().public_key(seed)),
        "metadata": metadata,
        "createdAt": now,
        "updatedAt": now,
        "accountId": principal.account_id,
        "seed": seed.hex(),
    }
    with ctx.store.transaction():
        ctx.store.put(_key_address(ctx, record["pubkey"]), record, _owner_group(ctx, principal.account_id))
    return _public(record)


def list_accounts(ctx, request) -> dict:
    """``{items, totalCount, page, pageSize}`` of the keys the caller may see, in creation order."""
    principal = authenticate(ctx, request)
    principal.require("solana:read")
    options = request.options if isinstance(request.options, dict) else {}
    records = ctx.store.group(_owner_group(ctx, principal.account_id))
    visible = [r for r in records
               if principal.may_see("solana:read", policy.Facts(metadata=r["metadata"], options=options))]
    return page_of(request, visible, _public, count_name="totalCount")


def _signing_key(ctx, request, principal) -> tuple[dict, str]:
    options = _options(request)
    pubkey = _parsed(_solana().parse_pubkey, options.get("from"), "options.from")
    record = ctx.store.get(_key_address(ctx, pubkey))
    if record is None or record["accountId"] != principal.account_id:
        raise OperationError(OperationCode.NOT_FOUND, "no such Solana account for this account")
    return record, pubkey


def sign_message(ctx, request) -> dict:
    """The order of 13.4: credential, a component of the type, ``from``, the input, the components."""
    principal = authenticate(ctx, request)
    principal.require("solana:signMessage")
    record, pubkey = _signing_key(ctx, request, principal)
    options = request.options
    message = _parsed(_solana().message_bytes, options.get("message"), options.get("format", "text"))
    principal.require("solana:signMessage", policy.Facts(metadata=record["metadata"], options=options, address=pubkey))
    return {"signature": _solana().base58(_solana().sign(bytes.fromhex(record["seed"]), message))}


def sign_transaction(ctx, request) -> dict:
    principal = authenticate(ctx, request)
    principal.require("solana:signTransaction")
    record, pubkey = _signing_key(ctx, request, principal)
    options = request.options
    transaction = _parsed(_solana().parse_transaction, options.get("transaction"))
    if pubkey not in transaction.signers:
        raise _invalid("options.from is not a required signer of this transaction")
    principal.require("solana:signTransaction", policy.Facts(metadata=record["metadata"], options=options,
                                                             address=pubkey, transaction=transaction))
    signature = _solana().sign(bytes.fromhex(record["seed"]), transaction.message)
    return {"signature": _solana().base58(signature), "signerPubkey": pubkey}


OPERATIONS = {
    "solana:create": create,
    "solana:list": list_accounts,
    "solana:signMessage": sign_message,
    "solana:signTransaction": sign_transaction,
}
