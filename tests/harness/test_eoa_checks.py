"""The eoa suite (harness/suites/eoa.py) passes the reference and FAILS a reference with one
client-observable defect of spec §12 per check.

Each defect replaces one of the reference's EOA handlers in-process (the harness's client talks to
the enclave through an httpx mock transport, as in test_account_checks.py). The handlers may use
the reference's own internals to reach the key: they play a Vault that has it. The independent
model (evm_model.py) is checked on its own against the published known answers of vectors/.
"""

from __future__ import annotations

import os

import httpx
import pytest
from eth_keys import keys
from eth_utils import keccak

import vectors
from harness.suites import evm_model
from harness.suites.registry import CheckFailed, CheckUnimplemented, Context, Level, Observation, all_checks
from reference.enclave import operations as reference_operations
from reference.enclave.errors import OperationCode, OperationError
from reference.enclave.operations import eoa as reference_eoa

from .test_account_checks import in_process_client as _unrecorded_client


def in_process_client(tmp_path, operations):
    """The in-process client of test_account_checks, with the client's record of every answer kept
    (eoa/no-private-key judges that record)."""
    client = _unrecorded_client(tmp_path, operations)
    transport = client._http._transport
    client._http.close()
    client._http = httpx.Client(base_url=client.base_url, transport=transport, event_hooks={"response": [client._record]})
    return client

CREATE, LIST = "eoa:create", "eoa:list"
SIGN_MESSAGE, SIGN_TYPED_DATA, SIGN_TRANSACTION = "eoa:signMessage", "eoa:signTypedData", "eoa:signTransaction"
SIGN_AUTHORIZATION, SIGN_STRUCTURED = "eoa:signAuthorization", "eoa:signStructuredMessage"


def eoa_checks():
    return [c for c in all_checks() if c.area == "eoa"]


def run_check(check_id: str, tmp_path, operations: dict) -> CheckFailed | None:
    check = next(c for c in all_checks() if c.id == check_id)
    client = in_process_client(tmp_path, operations)
    try:
        check.func(Context("http://vault.test", client, options={"examples": 5}))
    except CheckFailed as failure:
        return failure
    except Observation:
        return None
    finally:
        client.close()
    return None


# ---- one defect per variant ------------------------------------------------------------------------

def replaced(name, handler_factory):
    """The reference's operations with ``name``'s handler replaced by ``handler_factory(real)``."""
    operations = reference_operations.default_operations()
    operations[name] = handler_factory(operations[name])
    return operations


def rewrite(name, after=None, before=None):
    """``before(ctx, request)`` may return a new request; ``after(data, request)`` a new result."""
    def factory(real):
        def handler(ctx, request):
            if before:
                request = before(ctx, request) or request
            data = real(ctx, request)
            return after(data, request) if after else data
        return handler
    return replaced(name, factory)


def with_options(request, **changes):
    return request._replace(options={**request.options, **changes})


def signing_key(ctx, request) -> bytes:
    """The key of options.from, read from the store (the fakes run after the reference accepted it)."""
    record = ctx.store.get(reference_eoa._eoa_address(ctx, request.options["from"].lower()))
    return bytes.fromhex(record["privateKey"])


def rsv_hex(digest: bytes, key: bytes, v_offset: int = 27) -> str:
    signature = keys.PrivateKey(key).sign_msg_hash(digest)
    return (signature.r.to_bytes(32, "big") + signature.s.to_bytes(32, "big") + bytes([signature.v + v_offset])).hex()


def _random_address_for_create(data, request):
    return {**data, "address": evm_model.checksum("0x" + os.urandom(20).hex())}


def _coerce_metadata(ctx, request):
    metadata = request.options.get("metadata")
    if isinstance(metadata, dict):
        return with_options(request, metadata={k: str(v) for k, v in metadata.items()})
    return with_options(request, metadata={})


def _reverse_list(data, request):
    return {**data, "items": list(reversed(data["items"]))}


def _list_every_account():
    """eoa:list shows the EOAs of every account: it lists the records this Vault has created."""
    made = []

    def create_factory(real):
        return lambda ctx, request: made.append(real(ctx, request)) or made[-1]

    operations = replaced(CREATE, create_factory)
    real_list = operations[LIST]

    def list_all(ctx, request):
        data = real_list(ctx, request)
        return {**data, "items": made[:data["pageSize"]], "totalRecords": len(made)}

    operations[LIST] = list_all
    return operations


def _page_size_ignored(ctx, request):
    return with_options(request, pageSize=20) if "pageSize" in request.options else None


def _default_page_size_ten(ctx, request):
    return None if "pageSize" in request.options else with_options(request, pageSize=10)


def _page_from_string(ctx, request):
    changes = {name: int(request.options[name]) for name in ("page", "pageSize")
               if isinstance(request.options.get(name), str) and request.options[name].isdigit()}
    return with_options(request, **changes) if changes else None


def _from_truncated(ctx, request):
    value = request.options.get("from")
    if isinstance(value, str) and len(value) > 42:
        return with_options(request, **{"from": value[:42]})


def _from_uppercase_refused(ctx, request):
    value = request.options.get("from")
    if isinstance(value, str) and value[2:] == value[2:].upper() and any(c.isalpha() for c in value[2:]):
        raise OperationError(OperationCode.NOT_FOUND, "no such EOA for this account")


def _foreign_distinguished(real):
    def handler(ctx, request):
        try:
            return real(ctx, request)
        except OperationError as error:
            address = request.options.get("from")
            if error.code is OperationCode.NOT_FOUND and ctx.store.get(reference_eoa._eoa_address(ctx, address.lower())):
                raise OperationError(OperationCode.NOT_FOUND, "this EOA belongs to another account") from None
            raise
    return handler


def _message_without_prefix(real):
    def handler(ctx, request):
        if request.options.get("format", "text") != "text":
            return real(ctx, request)
        return {"signature": rsv_hex(keccak(request.options["message"].encode()), signing_key(ctx, request))}
    return handler


def _hex_signed_as_text(ctx, request):
    if request.options.get("format") == "hex":
        return with_options(request, format="text")


def _unknown_format_as_text(ctx, request):
    if request.options.get("format") not in ("text", "hex"):
        return with_options(request, format="text")


def _typed_data_domain_dropped(ctx, request):
    typed = request.options.get("typedData")
    if isinstance(typed, dict) and "domain" in typed:
        return with_options(request, typedData={**typed, "domain": {}, "types": {**typed["types"], "EIP712Domain": []}})


def _bad_typed_data_signed_as_text(real):
    def handler(ctx, request):
        try:
            return real(ctx, request)
        except OperationError:
            return {"signature": rsv_hex(evm_model.personal_digest(b"typed data"), signing_key(ctx, request))}
    return handler


def _transaction_changed(change):
    def before(ctx, request):
        tx = request.options.get("transaction")
        if isinstance(tx, dict):
            return with_options(request, transaction=change(dict(tx)) or tx)
    return before


def _eip155_ignored(tx):
    if tx.get("type") == "0x00":
        tx.pop("chainId", None)
        return tx


def _access_list_dropped(tx):
    if tx.get("accessList"):
        return {**tx, "accessList": []}


def _blob_hashes_reversed(tx):
    if tx.get("type") == "0x03" and isinstance(tx.get("blobVersionedHashes"), list):
        return {**tx, "blobVersionedHashes": tx["blobVersionedHashes"][::-1]}


def _type_05_kept(data, request):
    if request.options["transaction"].get("type") == "0x05":
        return {"signature": "05" + data["signature"][2:]}
    return data


def _nonce_wrapped(tx):
    nonce = tx.get("nonce")
    if isinstance(nonce, str) and nonce.startswith("0x") and int(nonce, 16) > evm_model.U64_MAX:
        return {**tx, "nonce": hex(int(nonce, 16) & evm_model.U64_MAX)}


def _authorization_nonce_string(data, request):
    return {"signedAuthorization": {**data["signedAuthorization"], "nonce": str(data["signedAuthorization"]["nonce"])}}


def _authorization_nonce_wrapped(ctx, request):
    authorization = request.options.get("authorization")
    if isinstance(authorization, dict) and isinstance(authorization.get("nonce"), int) and authorization["nonce"] > evm_model.U64_MAX:
        return with_options(request, authorization={**authorization, "nonce": authorization["nonce"] & evm_model.U64_MAX})


def _user_op_chain_fixed(ctx, request):
    if "chainId" in request.options:
        return with_options(request, chainId=1)


def _user_op_signed_raw(real):
    """The user-operation hash signed as it is, without EIP-191's prefix."""
    def handler(ctx, request):
        data = real(ctx, request)
        return {**data, "signature": rsv_hex(bytes.fromhex(data["message"][2:]), signing_key(ctx, request))}
    return handler


def _user_op_default_chain(ctx, request):
    if "chainId" not in request.options:
        return with_options(request, chainId=1)


def _list_without_auth(real):
    def handler(ctx, request):
        if not request.auth:
            return {"items": [], "page": 1, "pageSize": 20, "totalRecords": 0}
        return real(ctx, request)
    return handler


def _not_found_as_invalid_input(real):
    def handler(ctx, request):
        try:
            return real(ctx, request)
        except OperationError as error:
            if error.code is OperationCode.NOT_FOUND:
                raise OperationError(OperationCode.INVALID_INPUT, "no such EOA for this account") from None
            raise
    return handler


def _error_quotes_the_key(real):
    def handler(ctx, request):
        try:
            return real(ctx, request)
        except OperationError as error:
            if error.code is OperationCode.INVALID_INPUT and isinstance(request.options.get("from"), str):
                try:
                    key = signing_key(ctx, request)
                except (KeyError, TypeError):  # no such EOA
                    raise error from None
                raise OperationError(OperationCode.INVALID_INPUT, f"cannot sign this with key {key.hex()}") from None
            raise
    return handler


VARIANTS = {
    "eoa/create": lambda: rewrite(CREATE, after=_random_address_for_create),
    "eoa/metadata-invalid": lambda: rewrite(CREATE, before=_coerce_metadata),
    "eoa/list-own": _list_every_account,
    "eoa/list-pagination": lambda: rewrite(LIST, before=_page_size_ignored),
    "eoa/list-invalid": lambda: rewrite(LIST, before=_page_from_string),
    "eoa/from-malformed": lambda: rewrite(SIGN_TRANSACTION, before=_from_truncated),
    "eoa/from-any-case": lambda: rewrite(SIGN_MESSAGE, before=_from_uppercase_refused),
    "eoa/foreign-eoa-indistinguishable": lambda: replaced(SIGN_AUTHORIZATION, _foreign_distinguished),
    "eoa/sign-message-text": lambda: replaced(SIGN_MESSAGE, _message_without_prefix),
    "eoa/sign-message-hex": lambda: rewrite(SIGN_MESSAGE, before=_hex_signed_as_text),
    "eoa/sign-message-invalid": lambda: rewrite(SIGN_MESSAGE, before=_unknown_format_as_text),
    "eoa/sign-typed-data": lambda: rewrite(SIGN_TYPED_DATA, before=_typed_data_domain_dropped),
    "eoa/sign-typed-data-invalid": lambda: replaced(SIGN_TYPED_DATA, _bad_typed_data_signed_as_text),
    "eoa/sign-transaction-legacy": lambda: rewrite(SIGN_TRANSACTION, before=_transaction_changed(_eip155_ignored)),
    "eoa/sign-transaction-typed": lambda: rewrite(SIGN_TRANSACTION, before=_transaction_changed(_access_list_dropped)),
    "eoa/sign-transaction-blob": lambda: rewrite(SIGN_TRANSACTION, before=_transaction_changed(_blob_hashes_reversed)),
    "eoa/sign-transaction-7702": lambda: rewrite(SIGN_TRANSACTION, after=_type_05_kept),
    "eoa/sign-transaction-invalid": lambda: rewrite(SIGN_TRANSACTION, before=_transaction_changed(_nonce_wrapped)),
    "eoa/sign-authorization": lambda: rewrite(SIGN_AUTHORIZATION, after=_authorization_nonce_string),
    "eoa/sign-authorization-invalid": lambda: rewrite(SIGN_AUTHORIZATION, before=_authorization_nonce_wrapped),
    "eoa/sign-user-op-v06": lambda: rewrite(SIGN_STRUCTURED, before=_user_op_chain_fixed),
    "eoa/sign-user-op-v07": lambda: replaced(SIGN_STRUCTURED, _user_op_signed_raw),
    "eoa/sign-user-op-invalid": lambda: rewrite(SIGN_STRUCTURED, before=_user_op_default_chain),
    "eoa/auth": lambda: replaced(LIST, _list_without_auth),
    "eoa/error-codes": lambda: replaced(SIGN_MESSAGE, _not_found_as_invalid_input),
    "eoa/no-private-key": lambda: replaced(SIGN_TRANSACTION, _error_quotes_the_key),
}

# Further defects for the checks that guard several requirements.
EXTRA_VARIANTS = [
    ("eoa/list-own", lambda: rewrite(LIST, after=_reverse_list)),
    ("eoa/list-pagination", lambda: rewrite(LIST, before=_default_page_size_ten)),
    ("eoa/sign-transaction-typed", lambda: rewrite(SIGN_TRANSACTION, before=_transaction_changed(
        lambda tx: {**tx, "value": "0x0"} if tx.get("type") == "0x02" else None))),
    ("eoa/sign-transaction-legacy", lambda: rewrite(SIGN_TRANSACTION, before=_transaction_changed(
        lambda tx: {**tx, "to": "0x" + "00" * 20} if tx.get("to") is None else None))),
    ("eoa/sign-message-text", lambda: rewrite(SIGN_MESSAGE, after=lambda data, request: {"signature": "0x" + data["signature"]})),
    ("eoa/sign-user-op-v06", lambda: replaced(SIGN_STRUCTURED, _user_op_signed_raw)),
    ("eoa/foreign-eoa-indistinguishable", lambda: replaced(SIGN_MESSAGE, _not_found_as_invalid_input_for_foreign)),
]


def _not_found_as_invalid_input_for_foreign(real):
    def handler(ctx, request):
        try:
            return real(ctx, request)
        except OperationError as error:
            address = request.options.get("from")
            if error.code is OperationCode.NOT_FOUND and ctx.store.get(reference_eoa._eoa_address(ctx, address.lower())):
                raise OperationError(OperationCode.INVALID_INPUT, "no such EOA for this account") from None
            raise
    return handler


def test_every_eoa_check_has_a_variant():
    failing = {c.id for c in eoa_checks() if c.level is not Level.INFO}
    assert sorted(VARIANTS) == sorted(failing)


@pytest.mark.parametrize("check_id", [c.id for c in eoa_checks()])
def test_check_passes_the_reference(check_id, tmp_path):
    failure = run_check(check_id, tmp_path, reference_operations.default_operations())
    assert failure is None, f"{check_id} failed the unmodified reference: {failure.message} " \
                            f"(expected {failure.expected!r}, actual {failure.actual!r})"


@pytest.mark.parametrize("check_id", sorted(VARIANTS))
def test_check_fails_its_broken_variant(check_id, tmp_path):
    assert run_check(check_id, tmp_path, VARIANTS[check_id]()) is not None, f"{check_id} passed a Vault with its defect"


@pytest.mark.parametrize("check_id, variant", EXTRA_VARIANTS, ids=[f"{c}-{i}" for i, (c, _) in enumerate(EXTRA_VARIANTS)])
def test_check_fails_further_variants(check_id, variant, tmp_path):
    assert run_check(check_id, tmp_path, variant()) is not None, f"{check_id} passed a Vault with a defect"


@pytest.mark.parametrize("check_id", [c.id for c in eoa_checks() if c.level is not Level.INFO])
def test_check_is_unimplemented_on_a_vault_without_eoas(check_id, tmp_path):
    operations = {k: v for k, v in reference_operations.default_operations().items() if not k.startswith("eoa:")}
    check = next(c for c in all_checks() if c.id == check_id)
    client = in_process_client(tmp_path, operations)
    try:
        with pytest.raises(CheckUnimplemented):
            check.func(Context("http://vault.test", client, options={"examples": 5}))
    finally:
        client.close()


def test_blob_sidecar_is_observed(tmp_path):
    check = next(c for c in all_checks() if c.id == "eoa/blob-sidecar-refused")
    client = in_process_client(tmp_path, reference_operations.default_operations())
    try:
        with pytest.raises(Observation, match="refused"):
            check.func(Context("http://vault.test", client))
    finally:
        client.close()


# ---- the model against published known answers ----------------------------------------------------

def _kat(kind):
    (test,) = [t for g in vectors.load("evm_kat")["testGroups"] if g["type"] == kind for t in g["tests"]]
    return test


def test_model_decodes_the_eip155_example():
    kat = _kat("Eip155LegacyTransaction")
    decoded = evm_model.decode_transaction(bytes.fromhex(kat["rawTransaction"]))
    assert decoded.type == 0 and decoded.chain_id == 1 and decoded.v == 37
    assert decoded.fields == evm_model.expected_fields(kat["input"])
    assert decoded.signing_hash.hex() == kat["digest"]
    assert decoded.sender == kat["address"]


def test_model_refuses_non_canonical_encodings():
    raw = bytes.fromhex(_kat("Eip155LegacyTransaction")["rawTransaction"])
    with pytest.raises(evm_model.ModelError):
        evm_model.decode_transaction(b"\x05" + raw)  # no such type
    with pytest.raises(evm_model.ModelError):
        evm_model.decode_transaction(raw + b"\x00")  # trailing byte
    with pytest.raises(evm_model.ModelError):
        evm_model.rlp_int(b"\x00\x09", "nonce")  # leading zero


def test_model_mail_digest_is_the_eips():
    kat = _kat("Eip712TypedData")
    assert evm_model.MAIL_TYPED_DATA == kat["input"]
    assert evm_model.typed_data_digest(evm_model.MAIL_TYPED_DATA) == evm_model.MAIL_DIGEST == bytes.fromhex(kat["digest"])
    signature = bytes.fromhex(kat["signature"])
    r, s, v = evm_model.split_rsv(signature)
    assert evm_model.recover(evm_model.MAIL_DIGEST, v - 27, r, s) == kat["address"]


def test_model_personal_sign_known_answer():
    kat = _kat("Eip191PersonalSign")
    message = kat["input"]["message"].encode()
    assert evm_model.personal_digest(message).hex() == kat["digest"]
    assert evm_model.recover_personal(message, bytes.fromhex(kat["signature"])) == kat["address"]


def test_model_authorization_known_answer():
    kat = _kat("Eip7702Authorization")
    sent = kat["input"]
    digest = evm_model.authorization_digest(evm_model.quantity(sent["chainId"]), sent["address"], sent["nonce"])
    assert digest.hex() == kat["digest"]
    r, s, y = evm_model.split_rsv(bytes.fromhex(kat["signature"]))
    assert evm_model.recover(digest, y, r, s) == kat["address"]


def test_model_user_op_v07_packs_as_the_spec_says():
    # Packing one field at a time must move the hash; the 128-bit halves sit where 12.3 puts them.
    op = {"sender": "0x" + "11" * 20, "nonce": "0x0", "callData": "0x", "callGasLimit": "0x1",
          "verificationGasLimit": "0x2", "preVerificationGas": "0x3", "maxFeePerGas": "0x4", "maxPriorityFeePerGas": "0x5"}
    swapped = {**op, "callGasLimit": "0x2", "verificationGasLimit": "0x1"}
    assert evm_model.user_op_hash_v07(op, 1) != evm_model.user_op_hash_v07(swapped, 1)
    assert evm_model.user_op_hash_v07(op, 1) != evm_model.user_op_hash_v07(op, 2)
    # With a v0.6 layout of the same values the packed words differ, so the hashes must too.
    v06 = {**op, "initCode": "0x", "paymasterAndData": "0x"}
    assert evm_model.user_op_hash_v06(v06, 1) != evm_model.user_op_hash_v07(op, 1)
