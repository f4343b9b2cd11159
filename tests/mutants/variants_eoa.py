"""Mutation variants for EOAs and EVM signing (spec §12), each killed by one check of harness/suites/eoa.py.

Most rewrite a decrypted request or its reply (``_ops``); those that must sign something else
replace the operation's handler in the enclave and read the EOA's key from the store, as a
Vault holding the key would.
"""

from __future__ import annotations

import os

from tests.mutants.variants import _enclave, _on, _ops, variant

CREATE, LIST = "eoa:create", "eoa:list"
SIGN_MESSAGE, SIGN_TYPED_DATA, SIGN_TRANSACTION = "eoa:signMessage", "eoa:signTypedData", "eoa:signTransaction"
SIGN_AUTHORIZATION, SIGN_STRUCTURED = "eoa:signAuthorization", "eoa:signStructuredMessage"
U64_MAX = 2**64 - 1


# --- hooks -----------------------------------------------------------------------------------------

def _options(operation, change):
    """A ``before`` hook: ``change(options)`` rewrites the options of one operation (in place or returned)."""
    def before(request):
        if request.get("operation") == operation and isinstance(request.get("options"), dict):
            request["options"] = change(request["options"]) or request["options"]
        return request
    return before


def _transaction(change):
    def on_options(options):
        if isinstance(options.get("transaction"), dict):
            options["transaction"] = change(dict(options["transaction"])) or options["transaction"]
    return _options(SIGN_TRANSACTION, on_options)


def _handler(app, operation, wrap):
    """Replace one operation's handler: ``wrap(real, key_of)``, ``key_of(ctx, address)`` the EOA's key."""
    from reference.enclave.operations import eoa

    def key_of(ctx, address):
        return bytes.fromhex(ctx.store.get(eoa._eoa_address(ctx, address.lower()))["privateKey"])

    enclave = _enclave(app)
    enclave.operations[operation] = wrap(enclave.operations[operation], key_of)
    return app


def _rsv(digest: bytes, key: bytes, v_offset: int = 27) -> str:
    from eth_keys import keys

    signature = keys.PrivateKey(key).sign_msg_hash(digest)
    return (signature.r.to_bytes(32, "big") + signature.s.to_bytes(32, "big") + bytes([signature.v + v_offset])).hex()


# --- 12.1 create and list ----------------------------------------------------------------------

@variant("eoa-create-other-address", "§12.1", "eoa/create", "eoa:create answers an address that is not its key's")
def _(app):
    return _ops(app, after=_on(CREATE, lambda r, d: {**d, "address": "0x" + os.urandom(20).hex()}))


@variant("eoa-metadata-nested-accepted", "§12.1", "eoa/metadata-invalid",
         "non-scalar EOA metadata values are stored as their JSON text")
def _(app):
    import json

    def change(options):
        metadata = options.get("metadata")
        if isinstance(metadata, dict):
            options["metadata"] = {k: v if isinstance(v, (str, int, float, bool)) and v is not None else json.dumps(v)
                                   for k, v in metadata.items()}
    return _ops(app, before=_options(CREATE, change))


@variant("eoa-list-leaks-other-accounts", "§12.1", "eoa/list-own", "eoa:list shows every account's EOAs")
def _(app):
    made = []

    def after(request, reply):
        if reply.get("success") and request.get("operation") == CREATE:
            made.append(reply["data"])
        if reply.get("success") and request.get("operation") == LIST:
            data = reply["data"]
            start = (data["page"] - 1) * data["pageSize"]
            reply["data"] = {**data, "items": made[start:start + data["pageSize"]], "totalRecords": len(made)}
        return reply
    return _ops(app, after=after)


@variant("eoa-list-newest-first", "§12.1", "eoa/list-own", "eoa:list answers the newest EOA first")
def _(app):
    return _ops(app, after=_on(LIST, lambda r, d: {**d, "items": d["items"][::-1]}))


@variant("eoa-list-ignores-page-size", "§12.1", "eoa/list-pagination", "eoa:list pages by 20 whatever pageSize says")
def _(app):
    return _ops(app, before=_options(LIST, lambda options: {**options, "pageSize": 20} if "pageSize" in options else None))


@variant("eoa-list-default-page-size-10", "§12.1", "eoa/list-pagination", "eoa:list defaults pageSize to 10")
def _(app):
    return _ops(app, before=_options(LIST, lambda options: {"pageSize": 10, **options}))


@variant("eoa-list-string-page-accepted", "§12.1", "eoa/list-invalid", 'eoa:list reads page "1" as 1')
def _(app):
    def change(options):
        for name in ("page", "pageSize"):
            if isinstance(options.get(name), str) and options[name].isdigit():
                options[name] = int(options[name])
    return _ops(app, before=_options(LIST, change))


# --- 12.2 choosing the key ---------------------------------------------------------------------

@variant("eoa-from-truncated", "§12.2", "eoa/from-malformed", "a from longer than 20 bytes is cut to 20")
def _(app):
    def change(options):
        if isinstance(options.get("from"), str) and len(options["from"]) > 42:
            options["from"] = options["from"][:42]
    return _ops(app, before=_options(SIGN_TRANSACTION, change))


@variant("eoa-from-uppercase-refused", "§12.2", "eoa/from-any-case", "a from in uppercase digits is not found")
def _(app):
    def change(options):
        value = options.get("from")
        if isinstance(value, str) and value[2:] == value[2:].upper() and any(c.isalpha() for c in value[2:]):
            options["from"] = "0x" + "00" * 20
    return _ops(app, before=_options(SIGN_MESSAGE, change))


@variant("eoa-foreign-eoa-other-code", "§12.2", "eoa/foreign-eoa-indistinguishable",
         "another account's EOA is refused with auth_insufficient_scope, one that does not exist with not_found")
def _(app):
    from reference.enclave.errors import OperationCode, OperationError
    from reference.enclave.operations import eoa

    def wrap(real, key_of):
        def handler(ctx, request):
            try:
                return real(ctx, request)
            except OperationError as error:
                address = request.options.get("from")
                if error.code is OperationCode.NOT_FOUND and ctx.store.get(eoa._eoa_address(ctx, address.lower())):
                    raise OperationError(OperationCode.AUTH_INSUFFICIENT_SCOPE, "this EOA is not yours") from None
                raise
        return handler
    return _handler(app, SIGN_TYPED_DATA, wrap)


# --- 12.3 messages -------------------------------------------------------------------------------

def _resigned_message(app, digest_of, v_offset=27):
    def wrap(real, key_of):
        def handler(ctx, request):
            data = real(ctx, request)  # the reference's checks first
            digest = digest_of(request.options)
            return data if digest is None else {"signature": _rsv(digest, key_of(ctx, request.options["from"]), v_offset)}
        return handler
    return _handler(app, SIGN_MESSAGE, wrap)


def _personal(message: bytes) -> bytes:
    from eth_utils import keccak

    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


@variant("eoa-signature-v-0-1", "§12.3", "eoa/sign-message-text", "eoa:signMessage answers v in {0, 1}, not {27, 28}")
def _(app):
    return _resigned_message(app, lambda o: _personal(o["message"].encode()) if o.get("format", "text") == "text"
                             else None, v_offset=0)


@variant("eoa-message-without-prefix", "§12.3", "eoa/sign-message-text",
         "eoa:signMessage signs keccak256(message) without EIP-191's prefix")
def _(app):
    from eth_utils import keccak

    return _resigned_message(app, lambda o: keccak(o["message"].encode()) if o.get("format", "text") == "text" else None)


@variant("eoa-signature-0x", "§12.3", "eoa/sign-message-text", "signatures carry a 0x prefix")
def _(app):
    return _ops(app, after=_on(SIGN_MESSAGE, lambda r, d: {**d, "signature": "0x" + d["signature"]}))


@variant("eoa-hex-signed-as-text", "§12.3", "eoa/sign-message-hex", 'format "hex" signs the text of the hex string')
def _(app):
    return _ops(app, before=_options(SIGN_MESSAGE, lambda o: {**o, "format": "text"} if o.get("format") == "hex" else o))


@variant("eoa-unknown-format-as-text", "§12.3", "eoa/sign-message-invalid", "an unknown format is signed as text")
def _(app):
    return _ops(app, before=_options(
        SIGN_MESSAGE, lambda o: {**o, "format": "text"} if o.get("format", "text") not in ("text", "hex") else o))


@variant("eoa-typed-data-domain-dropped", "§12.3", "eoa/sign-typed-data",
         "eoa:signTypedData signs the message under an empty domain")
def _(app):
    def change(options):
        typed = options.get("typedData")
        if isinstance(typed, dict) and isinstance(typed.get("types"), dict):
            options["typedData"] = {**typed, "domain": {}, "types": {**typed["types"], "EIP712Domain": []}}
    return _ops(app, before=_options(SIGN_TYPED_DATA, change))


@variant("eoa-typed-data-invalid-signed", "§12.3", "eoa/sign-typed-data-invalid",
         "typed data that does not encode is signed as the text of its JSON")
def _(app):
    import json

    from reference.enclave.errors import OperationError

    def wrap(real, key_of):
        def handler(ctx, request):
            try:
                return real(ctx, request)
            except OperationError:
                text = json.dumps(request.options.get("typedData")).encode()
                return {"signature": _rsv(_personal(text), key_of(ctx, request.options["from"]))}
        return handler
    return _handler(app, SIGN_TYPED_DATA, wrap)


# --- 12.3 transactions -----------------------------------------------------------------------

@variant("eoa-eip155-ignored", "§12.3", "eoa/sign-transaction-legacy",
         "a legacy transaction's chainId is ignored (no EIP-155 replay protection)")
def _(app):
    return _ops(app, before=_transaction(lambda tx: {k: v for k, v in tx.items() if k != "chainId"}
                                         if tx.get("type") == "0x00" else None))


@variant("eoa-access-list-dropped", "§12.3", "eoa/sign-transaction-typed", "the accessList is not signed")
def _(app):
    return _ops(app, before=_transaction(lambda tx: {**tx, "accessList": []} if tx.get("accessList") else None))


@variant("eoa-value-dropped", "§12.3", "eoa/sign-transaction-typed", "an EIP-1559 transaction is signed with value 0")
def _(app):
    return _ops(app, before=_transaction(lambda tx: {**tx, "value": "0x0"} if tx.get("type") == "0x02" else None))


@variant("eoa-blob-fee-dropped", "§12.3", "eoa/sign-transaction-blob", "a blob transaction is signed with maxFeePerBlobGas 0")
def _(app):
    return _ops(app, before=_transaction(lambda tx: {**tx, "maxFeePerBlobGas": "0x0"} if tx.get("type") == "0x03" else None))


@variant("eoa-7702-encoded-0x05", "§12.3", "eoa/sign-transaction-7702",
         "a 7702 transaction sent as 0x05 is encoded with type byte 0x05")
def _(app):
    def change(request, data):
        if request["options"]["transaction"].get("type") == "0x05":
            return {"signature": "05" + data["signature"][2:]}
        return data
    return _ops(app, after=_on(SIGN_TRANSACTION, change))


@variant("eoa-nonce-over-64-bits-wrapped", "§12.3", "eoa/sign-transaction-invalid",
         "a nonce over 64 bits is reduced modulo 2^64")
def _(app):
    def change(tx):
        nonce = tx.get("nonce")
        if isinstance(nonce, str) and nonce.startswith("0x") and int(nonce, 16) > U64_MAX:
            return {**tx, "nonce": hex(int(nonce, 16) & U64_MAX)}
    return _ops(app, before=_transaction(change))


@variant("eoa-7702-creation-accepted", "§12.3", "eoa/sign-transaction-invalid",
         "a 7702 transaction with to: null is signed to the zero address")
def _(app):
    return _ops(app, before=_transaction(lambda tx: {**tx, "to": "0x" + "00" * 20}
                                         if tx.get("type") in ("0x04", "0x05") and tx.get("to", 0) is None else None))


# --- 12.3 authorizations and user operations ------------------------------------------------------

@variant("eoa-authorization-nonce-string", "§12.3", "eoa/sign-authorization",
         "signedAuthorization.nonce is a decimal string, not a JSON number")
def _(app):
    return _ops(app, after=_on(SIGN_AUTHORIZATION, lambda r, d: {
        "signedAuthorization": {**d["signedAuthorization"], "nonce": str(d["signedAuthorization"]["nonce"])}}))


@variant("eoa-authorization-without-magic", "§12.3", "eoa/sign-authorization",
         "the authorization is signed as keccak256(rlp([chainId, address, nonce])), without EIP-7702's 0x05")
def _(app):
    import rlp
    from eth_keys import keys
    from eth_utils import keccak

    def scalar(number):
        return number.to_bytes((number.bit_length() + 7) // 8, "big")

    def wrap(real, key_of):
        def handler(ctx, request):
            data = real(ctx, request)
            signed = data["signedAuthorization"]
            sent = request.options["authorization"]
            chain_id = int(sent["chainId"], 0) if isinstance(sent["chainId"], str) else sent["chainId"]
            digest = keccak(rlp.encode([scalar(chain_id), bytes.fromhex(sent["address"][2:]), scalar(signed["nonce"])]))
            signature = keys.PrivateKey(key_of(ctx, request.options["from"])).sign_msg_hash(digest)
            return {"signedAuthorization": {**signed, "yParity": signature.v, "r": hex(signature.r), "s": hex(signature.s)}}
        return handler
    return _handler(app, SIGN_AUTHORIZATION, wrap)


@variant("eoa-authorization-nonce-wrapped", "§12.3", "eoa/sign-authorization-invalid",
         "an authorization nonce over 64 bits is reduced modulo 2^64")
def _(app):
    def change(options):
        authorization = options.get("authorization")
        if isinstance(authorization, dict) and type(authorization.get("nonce")) is int and authorization["nonce"] > U64_MAX:
            options["authorization"] = {**authorization, "nonce": authorization["nonce"] & U64_MAX}
    return _ops(app, before=_options(SIGN_AUTHORIZATION, change))


@variant("eoa-user-op-chain-ignored", "§12.3", "eoa/sign-user-op-v06",
         "the user-operation hash is computed for chain 1 whatever chainId says")
def _(app):
    return _ops(app, before=_options(SIGN_STRUCTURED, lambda o: {**o, "chainId": 1} if "chainId" in o else o))


@variant("eoa-user-op-v07-v06-entrypoint", "§12.3", "eoa/sign-user-op-v07",
         "a v0.7 user operation without entrypoint is hashed for the v0.6 EntryPoint")
def _(app):
    def change(options):
        op = (options.get("structuredMessage") or {}).get("useropV07")
        if isinstance(op, dict) and "entrypoint" not in op:
            op["entrypoint"] = "0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789"
    return _ops(app, before=_options(SIGN_STRUCTURED, change))


@variant("eoa-user-op-hash-signed-raw", "§12.3", "eoa/sign-user-op-v07",
         "the user-operation hash is signed as it is, without EIP-191's prefix")
def _(app):
    def wrap(real, key_of):
        def handler(ctx, request):
            data = real(ctx, request)
            return {**data, "signature": _rsv(bytes.fromhex(data["message"][2:]), key_of(ctx, request.options["from"]))}
        return handler
    return _handler(app, SIGN_STRUCTURED, wrap)


@variant("eoa-user-op-chain-defaulted", "§12.3", "eoa/sign-user-op-invalid",
         "a user operation without chainId is hashed for chain 1")
def _(app):
    return _ops(app, before=_options(SIGN_STRUCTURED, lambda o: {"chainId": 1, **o}))


# --- 12.4 authentication ----------------------------------------------------------------------

@variant("eoa-list-without-auth", "§12.4", "eoa/auth", "eoa:list without auth answers an empty list")
def _(app):
    def after(request, reply):
        if request.get("operation") == LIST and not request.get("auth"):
            return {"success": True, "data": {"items": [], "page": 1, "pageSize": 20, "totalRecords": 0}, "error": None}
        return reply
    return _ops(app, after=after)


# --- 12: the private key stays inside ----------------------------------------------------------------

@variant("eoa-error-quotes-key", "§12.1", "eoa/no-private-key",
         "an eoa:signTransaction refusal names the EOA's private key in its message")
def _(app):
    from reference.enclave.errors import OperationCode, OperationError

    def wrap(real, key_of):
        def handler(ctx, request):
            try:
                return real(ctx, request)
            except OperationError as error:
                if error.code is not OperationCode.INVALID_INPUT:
                    raise
                try:
                    key = key_of(ctx, request.options["from"])
                except (KeyError, TypeError, AttributeError):  # no such EOA, or no usable from
                    raise error from None
                raise OperationError(OperationCode.INVALID_INPUT, f"cannot sign this with key {key.hex()}") from None
        return handler
    return _handler(app, SIGN_TRANSACTION, wrap)


@variant("eoa-missing-to-creates", "§12.3", "eoa/sign-transaction-invalid",
         "a transaction without `to` is signed as a contract creation (missing fields are defaulted)")
def _(app):
    def before(req):
        options = req.get("options")
        tx = options.get("transaction") if isinstance(options, dict) else None
        if req.get("operation") == "eoa:signTransaction" and isinstance(tx, dict):
            tx.setdefault("to", None)
            tx.setdefault("nonce", "0x0")
        return req
    return _ops(app, before=before)
