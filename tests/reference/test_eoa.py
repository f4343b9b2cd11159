"""EOA operations through the enclave's request loop (docs/spec/12-eoa.md), in-process.

Signatures are checked by recovering the signer with eth-account, transactions by decoding the
signed bytes and comparing every field with what was asked, never by comparing with our output.
"""

from __future__ import annotations

import os

import pytest
from eth_account import Account
from eth_account._utils.legacy_transactions import Transaction
from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes

import vectors
from eth_utils import to_checksum_address

from .test_service import call, make_enclave

TO = "0x3535353535353535353535353535353535353535"


@pytest.fixture
def enclave(tmp_path):
    return make_enclave(tmp_path / "vault.db")


def new_account(enclave) -> str:
    reply = call(enclave, {"operation": "serviceAccount:create", "options": {"metadata": {}}})
    return reply["data"]["adminKey"]


def op(enclave, operation, admin_key, options):
    return call(enclave, {"operation": operation, "auth": {"adminKey": admin_key}, "options": options})


def ok(reply):
    assert reply["success"] is True and reply["error"] is None, reply
    return reply["data"]


def refused(reply, code):
    assert reply == {"success": False, "data": None, "error": reply["error"]}, reply
    assert reply["error"]["code"] == code, reply


@pytest.fixture
def owner(enclave):
    admin_key = new_account(enclave)
    eoa = ok(op(enclave, "eoa:create", admin_key, {"metadata": {"team": "pay", "n": 3, "live": True}}))
    return admin_key, eoa


def test_create_returns_client_shape_and_key_stays_sealed(tmp_path):
    enclave = make_enclave(tmp_path / "db")
    admin_key = new_account(enclave)
    eoa = ok(op(enclave, "eoa:create", admin_key, {"metadata": {"team": "payments-xyz", "n": 3, "live": True}}))
    assert set(eoa) == {"id", "address", "metadata", "createdAt", "updatedAt"}
    assert eoa["metadata"] == {"team": "payments-xyz", "n": 3, "live": True}
    assert to_checksum_address(eoa["address"]) == eoa["address"]  # EIP-55
    raw = b"".join((tmp_path / name).read_bytes() for name in os.listdir(tmp_path))
    for needle in (eoa["address"][2:], eoa["address"][2:].lower(), eoa["id"], "payments-xyz", "privateKey"):
        assert needle.encode() not in raw, needle


def test_list_paginates_in_creation_order_and_only_the_callers(enclave):
    admin_key, other = new_account(enclave), new_account(enclave)
    made = [ok(op(enclave, "eoa:create", admin_key, {"metadata": {"i": i}}))["address"] for i in range(3)]
    ok(op(enclave, "eoa:create", other, {"metadata": {}}))
    first = ok(op(enclave, "eoa:list", admin_key, {"page": 1, "pageSize": 2}))
    second = ok(op(enclave, "eoa:list", admin_key, {"page": 2, "pageSize": 2}))
    assert (first["page"], first["pageSize"], first["totalRecords"]) == (1, 2, 3)
    assert [e["address"] for e in first["items"] + second["items"]] == made
    assert ok(op(enclave, "eoa:list", admin_key, {}))["pageSize"] == 20
    assert ok(op(enclave, "eoa:list", admin_key, {"page": 3, "pageSize": 2}))["items"] == []
    for bad in ({"page": 0}, {"pageSize": 0}, {"pageSize": 101}, {"page": "1"}):
        refused(op(enclave, "eoa:list", admin_key, bad), "invalid_input")


def test_sign_message_text_and_hex_recover_to_the_eoa(enclave, owner):
    admin_key, eoa = owner
    text = ok(op(enclave, "eoa:signMessage", admin_key, {"from": eoa["address"], "message": "hello ♥", "chainId": 1}))
    assert len(text["signature"]) == 130 and not text["signature"].startswith("0x")
    assert Account.recover_message(encode_defunct(text="hello ♥"), signature=bytes.fromhex(text["signature"])) == eoa["address"]
    hexed = ok(op(enclave, "eoa:signMessage", admin_key,
                  {"from": eoa["address"].lower(), "message": "0xdeadbeef", "format": "hex"}))
    signed = encode_defunct(primitive=bytes.fromhex("deadbeef"))
    assert Account.recover_message(signed, signature=bytes.fromhex(hexed["signature"])) == eoa["address"]
    refused(op(enclave, "eoa:signMessage", admin_key, {"from": eoa["address"], "message": "0xabc", "format": "hex"}),
            "invalid_input")
    refused(op(enclave, "eoa:signMessage", admin_key, {"from": eoa["address"], "message": "x", "format": "b64"}),
            "invalid_input")


def test_sign_typed_data_recovers_to_the_eoa(enclave, owner):
    admin_key, eoa = owner
    (mail,) = [t for g in vectors.load("evm_kat")["testGroups"] if g["type"] == "Eip712TypedData" for t in g["tests"]]
    reply = ok(op(enclave, "eoa:signTypedData", admin_key, {"from": eoa["address"], "typedData": mail["input"]}))
    encoded = encode_typed_data(full_message=mail["input"])
    assert Account.recover_message(encoded, signature=bytes.fromhex(reply["signature"])) == eoa["address"]
    broken = {**mail["input"], "primaryType": "Nope"}
    refused(op(enclave, "eoa:signTypedData", admin_key, {"from": eoa["address"], "typedData": broken}), "invalid_input")


BASE = {"nonce": "0x7", "gasLimit": "0x5208", "value": "0xde0b6b3a7640000", "input": "0xabcd"}
FEES = {"maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x3b9aca00"}
ACCESS = [{"address": "0x" + "11" * 20, "storageKeys": ["0x" + "00" * 31 + "01"]}]
AUTH = {"chainId": "0x1", "address": "0x" + "44" * 20, "nonce": 5, "yParity": 1, "r": "0x" + "ab" * 32, "s": "0x" + "12" * 32}
TRANSACTIONS = {
    "legacy-no-chain": {"type": "0x00", **BASE, "gasPrice": "0x4a817c800", "to": TO},
    "legacy-eip155": {"type": "0x00", **BASE, "chainId": "0x89", "gasPrice": "0x4a817c800", "to": TO},
    "legacy-create": {"type": "0x00", **BASE, "chainId": "0x1", "gasPrice": "0x1", "to": None},
    "eip2930": {"type": "0x01", **BASE, "chainId": "0x1", "gasPrice": "0x1", "to": TO, "accessList": ACCESS},
    "eip1559": {"type": "0x02", **BASE, **FEES, "chainId": "0x2105", "to": TO, "accessList": ACCESS},
    "eip1559-create": {"type": "0x02", **BASE, **FEES, "chainId": "0x1", "to": None, "accessList": []},
    "eip4844": {"type": "0x03", **BASE, **FEES, "chainId": "0x1", "to": TO, "accessList": [],
                "blobVersionedHashes": ["0x01" + "22" * 31], "maxFeePerBlobGas": "0x3"},
    "eip7702-client-0x05": {"type": "0x05", **BASE, **FEES, "chainId": "0x1", "to": TO, "accessList": [],
                            "authorizationList": [AUTH]},
    "eip7702-0x04": {"type": "0x04", **BASE, **FEES, "chainId": "0x1", "to": TO, "accessList": [],
                     "authorizationList": [AUTH]},
}


def _decode(raw: bytes) -> tuple[int, dict]:
    if raw[0] >= 0xC0:
        return 0, Transaction.from_bytes(raw).as_dict()
    return raw[0], TypedTransaction.from_bytes(HexBytes(raw)).as_dict()


@pytest.mark.parametrize("name", sorted(TRANSACTIONS))
def test_sign_transaction_decodes_to_what_was_asked(enclave, owner, name):
    admin_key, eoa = owner
    asked = TRANSACTIONS[name]
    raw = bytes.fromhex(ok(op(enclave, "eoa:signTransaction", admin_key, {"from": eoa["address"], "transaction": asked}))["signature"])
    assert Account.recover_transaction(raw) == eoa["address"]
    tx_type, got = _decode(raw)
    assert tx_type == {"0x00": 0, "0x01": 1, "0x02": 2, "0x03": 3, "0x04": 4, "0x05": 4}[asked["type"]]
    q = lambda key: int(asked[key], 16)  # noqa: E731
    assert (got["nonce"], got["gas"], got["value"], bytes(got["data"])) == (q("nonce"), q("gasLimit"), q("value"), b"\xab\xcd")
    assert bytes(got["to"]) == (b"" if asked["to"] is None else bytes.fromhex(asked["to"][2:]))
    if tx_type == 0:
        assert got["gasPrice"] == q("gasPrice")
        if "chainId" in asked:  # EIP-155: v = chainId * 2 + 35 + yParity
            assert got["v"] in (q("chainId") * 2 + 35, q("chainId") * 2 + 36)
        else:
            assert got["v"] in (27, 28)
        return
    assert got["chainId"] == q("chainId")
    # eth-account decodes storage keys as integers
    assert [(bytes(e["address"]).hex(), [int(k).to_bytes(32, "big").hex() for k in e["storageKeys"]])
            for e in got["accessList"]] == \
        [(e["address"][2:].lower(), [k[2:] for k in e["storageKeys"]]) for e in asked["accessList"]]
    if tx_type == 1:
        assert got["gasPrice"] == q("gasPrice")
        return
    assert (got["maxFeePerGas"], got["maxPriorityFeePerGas"]) == (q("maxFeePerGas"), q("maxPriorityFeePerGas"))
    if tx_type == 3:
        assert got["maxFeePerBlobGas"] == q("maxFeePerBlobGas")
        assert [bytes(h).hex() for h in got["blobVersionedHashes"]] == [h[2:] for h in asked["blobVersionedHashes"]]
    if tx_type == 4:
        (auth,) = got["authorizationList"]
        assert (auth["chainId"], auth["nonce"], auth["yParity"], auth["r"], auth["s"]) == (1, 5, 1, int(AUTH["r"], 16), int(AUTH["s"], 16))
        assert bytes(auth["address"]) == bytes.fromhex(AUTH["address"][2:])


@pytest.mark.parametrize(("why", "transaction"), [
    ("unknown type", {**TRANSACTIONS["eip1559"], "type": "0x07"}),
    ("7702 without authorizations", {**TRANSACTIONS["eip7702-client-0x05"], "authorizationList": []}),
    ("authorization without nonce (the client's type omits it)",
     {**TRANSACTIONS["eip7702-client-0x05"], "authorizationList": [{k: v for k, v in AUTH.items() if k != "nonce"}]}),
    ("7702 creating a contract", {**TRANSACTIONS["eip7702-client-0x05"], "to": None}),
    ("blob transaction creating a contract", {**TRANSACTIONS["eip4844"], "to": None}),
    ("blob sidecar", {**TRANSACTIONS["eip4844"], "blobs": ["0x00"], "commitments": [], "proofs": []}),
    ("typed without chainId", {k: v for k, v in TRANSACTIONS["eip1559"].items() if k != "chainId"}),
    ("nonce beyond 64 bits", {**TRANSACTIONS["eip1559"], "nonce": hex(2**64)}),
    ("odd hex input", {**TRANSACTIONS["eip1559"], "input": "0xabc"}),
    ("bad to", {**TRANSACTIONS["eip1559"], "to": "0x1234"}),
    ("not an object", "0x02f8"),
    # A missing field is not defaulted: without `to` the transaction would become a contract creation.
    *[(f"{field} missing", {k: v for k, v in TRANSACTIONS["eip1559"].items() if k != field})
      for field in ("to", "nonce", "value", "input", "accessList", "gasLimit", "maxFeePerGas")],
    ("legacy without to", {k: v for k, v in TRANSACTIONS["legacy-eip155"].items() if k != "to"}),
])
def test_bad_transactions_are_invalid_input(enclave, owner, why, transaction):
    admin_key, eoa = owner
    refused(op(enclave, "eoa:signTransaction", admin_key, {"from": eoa["address"], "transaction": transaction}), "invalid_input")


def test_only_the_owner_signs_and_unknown_eoas_look_the_same(enclave, owner):
    admin_key, eoa = owner
    stranger = new_account(enclave)
    message = {"from": eoa["address"], "message": "hi"}
    refused(op(enclave, "eoa:signMessage", stranger, message), "not_found")
    refused(op(enclave, "eoa:signMessage", admin_key, {**message, "from": "0x" + "99" * 20}), "not_found")
    refused(op(enclave, "eoa:signMessage", admin_key, {**message, "from": "nope"}), "invalid_input")
    refused(op(enclave, "eoa:signMessage", "sa_adm_" + "00" * 32, message), "auth_invalid_admin_key")
    refused(call(enclave, {"operation": "eoa:signMessage", "options": message}), "auth_missing")
    refused(call(enclave, {"operation": "eoa:create", "options": {"metadata": {}}}), "auth_missing")
    refused(op(enclave, "eoa:create", admin_key, {"metadata": {"x": [1]}}), "invalid_input")
    assert ok(op(enclave, "eoa:list", stranger, {}))["totalRecords"] == 0


def test_sign_authorization_recovers_to_the_eoa_and_echoes_the_tuple(enclave, owner):
    import rlp
    from eth_keys import keys
    from eth_utils import keccak

    admin_key, eoa = owner
    asked = {"chainId": "0x2105", "address": "0x" + "44" * 20, "nonce": 3}
    signed = ok(op(enclave, "eoa:signAuthorization", admin_key, {"from": eoa["address"], "authorization": asked}))
    signed = signed["signedAuthorization"]
    assert {k: signed[k] for k in asked} == asked and signed["yParity"] in (0, 1)
    # EIP-7702: the authority signs keccak256(MAGIC 0x05 || rlp([chain_id, address, nonce]))
    digest = keccak(b"\x05" + rlp.encode([0x2105, bytes.fromhex("44" * 20), 3]))
    signature = keys.Signature(vrs=(signed["yParity"], int(signed["r"], 16), int(signed["s"], 16)))
    assert signature.recover_public_key_from_msg_hash(digest).to_checksum_address() == eoa["address"]
    for bad in ({**asked, "nonce": -1}, {**asked, "address": "0x12"}, {"chainId": "0x1", "address": asked["address"]}):
        refused(op(enclave, "eoa:signAuthorization", admin_key, {"from": eoa["address"], "authorization": bad}),
                "invalid_input")


# ---------- ERC-4337 user operations ----------

SENDER = "0x" + "5a" * 20
USEROP_V06 = {"sender": SENDER, "nonce": "0x1", "initCode": "0x", "callData": "0xb61d27f6", "callGasLimit": "0x30d40",
              "verificationGasLimit": "0x186a0", "preVerificationGas": "0xc350", "maxFeePerGas": "0x77359400",
              "maxPriorityFeePerGas": "0x3b9aca00", "paymasterAndData": "0x"}
USEROP_V07 = {"sender": SENDER, "nonce": "0x2", "factory": "0x" + "fa" * 20, "factoryData": "0x1234",
              "callData": "0xb61d27f6", "callGasLimit": "0x30d40", "verificationGasLimit": "0x186a0",
              "preVerificationGas": "0xc350", "maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x3b9aca00",
              "paymaster": "0x" + "9a" * 20, "paymasterData": "0xbeef", "paymasterVerificationGasLimit": "0x1000",
              "paymasterPostOpGasLimit": "0x2000"}


def _erc4337_hash(types, values, entry_point, chain_id):
    """ERC-4337's getUserOpHash written out from the EntryPoint sources, for the test alone."""
    from eth_abi import encode
    from eth_utils import keccak

    return keccak(encode(["bytes32", "address", "uint256"], [keccak(encode(types, values)), entry_point, chain_id]))


def _expected_v06(op, entry_point, chain_id):
    from eth_utils import keccak

    n = lambda k: int(op[k], 16)  # noqa: E731
    b = lambda k: keccak(bytes.fromhex(op[k][2:]))  # noqa: E731
    return _erc4337_hash(["address", "uint256", "bytes32", "bytes32"] + ["uint256"] * 5 + ["bytes32"],
                         [op["sender"], n("nonce"), b("initCode"), b("callData"), n("callGasLimit"),
                          n("verificationGasLimit"), n("preVerificationGas"), n("maxFeePerGas"),
                          n("maxPriorityFeePerGas"), b("paymasterAndData")], entry_point, chain_id)


def _expected_v07(op, entry_point, chain_id):
    from eth_utils import keccak

    n = lambda k: int(op[k], 16)  # noqa: E731
    raw = lambda k: bytes.fromhex(op[k][2:])  # noqa: E731
    init_code = raw("factory") + raw("factoryData")
    pm = raw("paymaster") + n("paymasterVerificationGasLimit").to_bytes(16, "big") + \
        n("paymasterPostOpGasLimit").to_bytes(16, "big") + raw("paymasterData")
    gas_limits = n("verificationGasLimit").to_bytes(16, "big") + n("callGasLimit").to_bytes(16, "big")
    fees = n("maxPriorityFeePerGas").to_bytes(16, "big") + n("maxFeePerGas").to_bytes(16, "big")
    return _erc4337_hash(["address", "uint256", "bytes32", "bytes32", "bytes32", "uint256", "bytes32", "bytes32"],
                         [op["sender"], n("nonce"), keccak(init_code), keccak(raw("callData")), gas_limits,
                          n("preVerificationGas"), fees, keccak(pm)], entry_point, chain_id)


@pytest.mark.parametrize(("kind", "userop", "expected", "default_entry_point"), [
    ("useropV06", USEROP_V06, _expected_v06, "0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789"),
    ("useropV07", USEROP_V07, _expected_v07, "0x0000000071727De22E5E9d8BAf0edAc6f37da032"),
])
def test_user_operation_hash_and_signature(enclave, owner, kind, userop, expected, default_entry_point):
    admin_key, eoa = owner
    sign = lambda op, chain: op_(enclave, admin_key, eoa, {kind: op}, chain)  # noqa: E731
    reply = ok(sign(userop, 8453))
    digest = expected(userop, default_entry_point, 8453)
    assert reply["message"] == "0x" + digest.hex()
    assert Account.recover_message(encode_defunct(primitive=digest), signature=bytes.fromhex(reply["signature"])) == eoa["address"]
    other_entry_point = "0x" + "e0" * 20
    moved = ok(sign({**userop, "entrypoint": other_entry_point}, 1))
    assert moved["message"] == "0x" + expected(userop, other_entry_point, 1).hex()
    refused(sign(userop, None), "invalid_input")
    refused(sign({**userop, "sender": "0x12"}, 1), "invalid_input")
    refused(op_(enclave, admin_key, eoa, {"useropV08": userop}, 1), "invalid_input")


def op_(enclave, admin_key, eoa, structured, chain_id):
    options = {"from": eoa["address"], "structuredMessage": structured}
    if chain_id is not None:
        options["chainId"] = chain_id
    return op(enclave, "eoa:signStructuredMessage", admin_key, options)
