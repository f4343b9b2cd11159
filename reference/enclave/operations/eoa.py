"""EOAs (docs/spec/12-eoa.md): create, list, and EVM signing with keys that never leave the enclave.

Each EOA is one sealed record at the HMAC address of ("eoa", its lowercase address), holding its
private key, metadata and owning service account; the records of one account share a group
(the HMAC of ("eoa-owner", account id)) so ``eoa:list`` needs no plaintext index. A request for
another account's EOA is answered exactly as one for an EOA that does not exist.
"""

from __future__ import annotations

import uuid

from .. import policy
from ..auth import authenticate
from ..errors import OperationCode, OperationError
from ..limits import check_metadata


def _evm():
    """The EVM signing module, loaded on the first EOA operation rather than at start: eth-account
    is heavy, and the enclave image's lock does not carry it yet (a Vault without EOAs never needs it)."""
    from .. import evm

    return evm

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def _eoa_address(ctx, address_lower: str) -> bytes:
    return ctx.store.address("eoa", address_lower)


def _owner_group(ctx, account_id: str) -> bytes:
    return ctx.store.address("eoa-owner", account_id)


def _invalid(message: str) -> OperationError:
    return OperationError(OperationCode.INVALID_INPUT, message)


def _metadata(options: dict) -> dict:
    """The client's ``Record<string, string | number | boolean>``; numbers must be finite."""
    metadata = options.get("metadata", {})
    if not isinstance(metadata, dict):
        raise _invalid("options.metadata must be an object")
    for key, value in metadata.items():
        if not isinstance(value, (str, bool, int, float)) or value != value or value in (float("inf"), float("-inf")):
            raise _invalid(f"options.metadata[{key!r}] must be a string, a finite number or a boolean")
    return check_metadata(metadata)


def _public(record: dict) -> dict:
    return {k: record[k] for k in ("id", "address", "metadata", "createdAt", "updatedAt")}


def _options(request) -> dict:
    if not isinstance(request.options, dict):
        raise _invalid("options must be an object")
    return request.options


def create(ctx, request) -> dict:
    principal = authenticate(ctx, request)
    metadata = _metadata(_options(request))
    principal.require("eoa:create", policy.Facts(metadata=metadata, options=request.options))
    key = _evm().new_private_key(ctx.random_bytes)
    now = ctx.timestamp()
    record = {
        "id": str(uuid.UUID(bytes=ctx.random_bytes(16), version=4)),
        "address": _evm().address_of(key),
        "metadata": metadata,
        "createdAt": now,
        "updatedAt": now,
        "accountId": principal.account_id,
        "privateKey": key.hex(),
    }
    with ctx.store.transaction():
        ctx.store.put(_eoa_address(ctx, record["address"].lower()), record, _owner_group(ctx, principal.account_id))
    return _public(record)


def positive_int(options: dict, name: str, default: int) -> int:
    value = options.get(name, default)
    if type(value) is not int or value < 1:
        raise _invalid(f"options.{name} must be a positive integer")
    return value


def page_of(request, items: list, public, count_name: str = "totalRecords") -> dict:
    """``{items, page, pageSize, totalRecords}`` of the visible items, in creation order (12.1);
    Solana's list names its count ``totalCount`` (14.1)."""
    options = request.options if isinstance(request.options, dict) else {}
    page = positive_int(options, "page", 1)
    page_size = positive_int(options, "pageSize", DEFAULT_PAGE_SIZE)
    if page_size > MAX_PAGE_SIZE:
        raise _invalid(f"options.pageSize must be at most {MAX_PAGE_SIZE}")
    start = (page - 1) * page_size
    return {
        "items": [public(r) for r in items[start : start + page_size]],
        "page": page,
        "pageSize": page_size,
        count_name: len(items),
    }


def list_eoas(ctx, request) -> dict:
    principal = authenticate(ctx, request)
    principal.require("eoa:read")
    records = ctx.store.group(_owner_group(ctx, principal.account_id))  # creation order
    visible = [r for r in records
               if principal.may_see("eoa:read", policy.Facts(metadata=r["metadata"], options=request.options))]
    return page_of(request, visible, _public)


def _sign(ctx, request, prepare):
    """The order of 13.4: credential, a component of the type at all, ``from`` (12.2), the input,
    the components; only then the signature."""
    principal = authenticate(ctx, request)
    principal.require(request.operation)
    options = _options(request)
    try:
        address = _evm().normalise_address(options.get("from"), "options.from")
    except _evm().EvmInputError as exc:
        raise _invalid(str(exc)) from None
    record = ctx.store.get(_eoa_address(ctx, address))
    if record is None or record["accountId"] != principal.account_id:
        raise OperationError(OperationCode.NOT_FOUND, "no such EOA for this account")
    try:
        signer = prepare(options)
    except _evm().EvmInputError as exc:
        raise _invalid(str(exc)) from None
    principal.require(request.operation, policy.Facts(metadata=record["metadata"], options=options, address=address))
    try:
        return signer(bytes.fromhex(record["privateKey"]))
    except _evm().EvmInputError as exc:
        raise _invalid(str(exc)) from None


def _message(options: dict):
    chain_id = options.get("chainId")
    # chainId is accepted for policies (13.6); EIP-191 does not sign it.
    if chain_id is not None and (type(chain_id) is not int or chain_id < 0):
        raise _invalid("options.chainId must be a non-negative integer")
    return _evm().prepare_message(options.get("message"), options.get("format", "text"))


def sign_message(ctx, request) -> dict:
    return {"signature": _sign(ctx, request, _message)}


def sign_typed_data(ctx, request) -> dict:
    return {"signature": _sign(ctx, request, lambda o: _evm().prepare_typed_data(o.get("typedData")))}


def sign_transaction(ctx, request) -> dict:
    return {"signature": _sign(ctx, request, lambda o: _evm().prepare_transaction(o.get("transaction")))}


def sign_authorization(ctx, request) -> dict:
    return {"signedAuthorization": _sign(ctx, request, lambda o: _evm().prepare_authorization(o.get("authorization")))}


def sign_structured_message(ctx, request) -> dict:
    return _sign(ctx, request,
                 lambda o: _evm().prepare_structured_message(o.get("structuredMessage"), o.get("chainId")))


OPERATIONS = {
    "eoa:create": create,
    "eoa:list": list_eoas,
    "eoa:signMessage": sign_message,
    "eoa:signTypedData": sign_typed_data,
    "eoa:signTransaction": sign_transaction,
    "eoa:signAuthorization": sign_authorization,
    "eoa:signStructuredMessage": sign_structured_message,
}
