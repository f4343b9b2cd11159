"""The published client @thirdweb-dev/vault-sdk@0.1.1, unmodified, drives every EVM and access-token
function it exports against the reference (docs/spec/12-eoa.md, docs/spec/13-access-tokens.md).

published_client_evm_flow.mjs calls createEoa, listEoas, signMessage, signTypedData,
signTransaction (with the client's own parseTransaction for viem-style input), signAuthorization,
signStructuredMessage, createAccessToken, listAccessTokens, revokeAccessToken and
createSignedAccessToken, and prints what it asked and what the client answered. Nothing here trusts
the Vault's word: signatures are recovered with eth-account and eth-keys, signed transactions are
RLP-decoded here and compared field by field with what was asked, user-operation hashes are
recomputed from the ERC-4337 EntryPoint sources, and EIP-712's Mail example is anchored to the
digest printed in the EIP.

Client quirks seen through this flow (spec errata candidates; 12.5 lists the first ones):

- transaction-types.ts's 7702 type is ``0x05`` (the Vault encodes ``0x04``, 12.5.1), and its
  ``SignedAuthorization`` has no ``nonce``; ``parseTransaction`` (normalizeAuthorizationList)
  rebuilds each entry from address/chainId/r/s/yParity and so drops a ``nonce`` the caller gave.
  A 7702 transaction in the client's declared shape, or built with its ``parseTransaction``, is
  therefore refused (``invalid_input``, 12.5.2); only an entry carrying ``nonce`` outside the
  declared type (e.g. signAuthorization's own answer, passed through) signs.
- ``TxEip4844WithSidecar`` flattens blobs/commitments/proofs into the transaction; a Vault refuses
  them (12.5.6): the signed payload has no sidecar.
- ``parseTransaction`` turns a missing ``to`` into ``null``, i.e. a silent contract creation, and
  its truthiness asserts refuse zero quantities given as numbers/bigints (``gasPrice: 0n``,
  ``chainId: 0`` for typed transactions, ``gas: 0``); hex strings are passed through unchecked.
- ``SignStructuredMessageOptions.chainId`` is optional, but the user-operation hash commits to
  it; the Vault refuses a request without it (``invalid_input``, 12.3).
- ``signTypedData`` passes ``types`` through as given; viem-style callers leave ``EIP712Domain``
  out, and the reference then derives it from the domain's members (the EIP's digest results).
  12.3 does not say so; a Vault that insisted on ``EIP712Domain`` would refuse those callers.
- ``ListAccessTokensPayload`` declares no ``options``, though the exported
  ``GetAccessTokensOptions`` has page/pageSize and the Vault pages (13.2): the flow passes them
  anyway. ``CreateAccessTokenOptions.metadata`` is required by the type, optional in 13.1.
- ``AccessTokenData.revokedAt`` is ``string | undefined``; the reference answers ``null`` (13.3).
- ``createSignedAccessToken`` accepts any positive ``expiryTimestamp``, even one long past; only
  the Vault refuses such a token (13.7 step 4).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
import rlp
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_keys import keys
from eth_utils import keccak, to_checksum_address

from .test_published_client import require_node_modules

HERE = Path(__file__).resolve().parent
pytestmark = [pytest.mark.interop, pytest.mark.server]

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
# EIP-712's example: the digest its test case prints for the Mail message.
EIP712_MAIL_DIGEST = "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
# Canonical EntryPoint deployments (docs/spec/12-eoa.md 12.3).
ENTRYPOINT_V06 = "0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789"
ENTRYPOINT_V07 = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"


@pytest.fixture(scope="module")
def flow(reference_server):
    require_node_modules()
    completed = subprocess.run(["node", "published_client_evm_flow.mjs", reference_server.url + "/"],
                               cwd=HERE, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    return Flow([json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")])


class Flow:
    def __init__(self, steps: list[dict]):
        self.steps = steps
        account = self.one("serviceAccount:create")["result"]["data"]
        self.account_id = account["id"]
        self.eoas = [self.one(f"createEoa#{i}")["result"]["data"]["address"] for i in range(3)]
        self.pay_eoa = self.eoas[0]

    def all(self, prefix: str) -> list[dict]:
        found = [s for s in self.steps if s["step"] == prefix or s["step"].startswith(prefix + " ")]
        assert found, f"the flow made no {prefix!r} call"
        return found

    def one(self, name: str) -> dict:
        found = [s for s in self.steps if s["step"] == name]
        assert len(found) == 1, f"{name!r}: {len(found)} calls"
        return found[0]


# ---- answers ------------------------------------------------------------------------------------

def ok(step: dict):
    result = step["result"]
    assert result.get("success") is True and result.get("error") is None, (step["step"], result)
    return result["data"]


def refused(step: dict, code: str):
    result = step["result"]
    assert result.get("success") is False and result.get("data") is None, (step["step"], result)
    assert result["error"]["code"] == code, (step["step"], result)


def unprefixed_hex(text: str) -> bytes:
    # PROTOCOL.md section 5: signatures are lowercase hex without 0x.
    assert re.fullmatch(r"(?:[0-9a-f]{2})+", text), text
    return bytes.fromhex(text)


def quantity(value) -> int:
    if isinstance(value, int):
        return value
    return int(value, 16) if value.startswith("0x") else int(value)


def recover_digest(digest: bytes, y_parity: int, r: int, s: int) -> str:
    signature = keys.Signature(vrs=(y_parity, r, s))
    return signature.recover_public_key_from_msg_hash(digest).to_checksum_address()


def rsv(signature: bytes) -> tuple[int, int, int]:
    assert len(signature) == 65
    r, s, v = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    assert v in (27, 28), v
    assert 0 < s <= SECP256K1_N // 2, "high-s signature"
    return r, s, v


def assert_personal_signature(signature_hex: str, message: bytes, signer: str):
    signature = unprefixed_hex(signature_hex)
    r, s, v = rsv(signature)
    assert Account.recover_message(encode_defunct(primitive=message), signature=signature) == signer
    prefixed = b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message
    assert recover_digest(keccak(prefixed), v - 27, r, s) == signer


def message_bytes(options: dict) -> bytes:
    if options.get("format") == "hex":
        return bytes.fromhex(options["message"][2:])
    return options["message"].encode()


# ---- transactions, decoded here ------------------------------------------------------------------

QUANTITIES = {"chainId", "nonce", "gasPrice", "gasLimit", "maxFeePerGas", "maxPriorityFeePerGas",
              "maxFeePerBlobGas", "value"}
# EIP-155 / EIP-2930 / EIP-1559 / EIP-4844 / EIP-7702 payload fields, in RLP order, before the signature.
LAYOUT = {
    0: ["nonce", "gasPrice", "gasLimit", "to", "value", "input"],
    1: ["chainId", "nonce", "gasPrice", "gasLimit", "to", "value", "input", "accessList"],
    2: ["chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gasLimit", "to", "value", "input",
        "accessList"],
    3: ["chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gasLimit", "to", "value", "input",
        "accessList", "maxFeePerBlobGas", "blobVersionedHashes"],
    4: ["chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gasLimit", "to", "value", "input",
        "accessList", "authorizationList"],
}


def rlp_int(item: bytes) -> int:
    assert isinstance(item, bytes) and not item.startswith(b"\x00"), f"non-canonical RLP integer {item!r}"
    return int.from_bytes(item, "big")


def hex_of(item: bytes) -> str:
    return "0x" + item.hex()


def decoded_field(name: str, item):
    if name in QUANTITIES:
        return rlp_int(item)
    if name == "to":
        return None if item == b"" else hex_of(item)
    if name == "input":
        return hex_of(item)
    if name == "accessList":
        return [{"address": hex_of(a), "storageKeys": [hex_of(k) for k in ks]} for a, ks in item]
    if name == "blobVersionedHashes":
        return [hex_of(h) for h in item]
    if name == "authorizationList":
        return [dict(zip(("chainId", "address", "nonce", "yParity", "r", "s"),
                         (rlp_int(c), hex_of(a), rlp_int(n), rlp_int(y), rlp_int(r), rlp_int(s))))
                for c, a, n, y, r, s in item]
    raise AssertionError(name)


def asked_field(name: str, value):
    """What a field asked in the client's wire shape must decode to."""
    if name in QUANTITIES:
        return quantity(value)
    if name == "to":
        return None if value is None else value.lower()
    if name == "input":
        return value.lower()
    if name == "accessList":
        return [{"address": e["address"].lower(), "storageKeys": [k.lower() for k in e["storageKeys"]]}
                for e in value]
    if name == "blobVersionedHashes":
        return [h.lower() for h in value]
    if name == "authorizationList":
        return [{"chainId": quantity(a["chainId"]), "address": a["address"].lower(), "nonce": quantity(a["nonce"]),
                 "yParity": quantity(a["yParity"]), "r": quantity(a["r"]), "s": quantity(a["s"])} for a in value]
    raise AssertionError(name)


def decode_signed_transaction(raw: bytes) -> tuple[int, dict, str, int]:
    """(type, fields, sender, v or yParity) from network-encoded signed bytes; the sender recovered here."""
    if raw[0] >= 0xC0:
        items = rlp.decode(raw)
        assert len(items) == 9
        v, r, s = rlp_int(items[6]), rlp_int(items[7]), rlp_int(items[8])
        fields = {name: decoded_field(name, item) for name, item in zip(LAYOUT[0], items[:6])}
        if v in (27, 28):
            y_parity, preimage = v - 27, rlp.encode(items[:6])
        else:  # EIP-155
            fields["chainId"] = (v - 35) // 2
            y_parity = (v - 35) % 2
            preimage = rlp.encode(items[:6] + [fields["chainId"], 0, 0])
        tx_type = 0
    else:
        tx_type, items = raw[0], rlp.decode(raw[1:])
        layout = LAYOUT[tx_type]
        assert len(items) == len(layout) + 3, (tx_type, len(items))
        fields = {name: decoded_field(name, item) for name, item in zip(layout, items)}
        y_parity, r, s = (rlp_int(x) for x in items[len(layout):])
        assert y_parity in (0, 1)
        preimage = bytes([tx_type]) + rlp.encode(items[:len(layout)])
    assert 0 < s <= SECP256K1_N // 2, "high-s signature"
    payload = raw if tx_type == 0 else raw[1:]
    assert rlp.encode(rlp.decode(payload)) == payload, "non-canonical RLP"
    return tx_type, fields, recover_digest(keccak(preimage), y_parity, r, s), v if tx_type == 0 else y_parity


def assert_transaction_signed_as_asked(step: dict, signer: str, asked: dict | None = None):
    asked = asked if asked is not None else step["asked"]["transaction"]
    raw = unprefixed_hex(ok(step)["signature"])
    tx_type, fields, sender, v = decode_signed_transaction(raw)
    assert tx_type == {0: 0, 1: 1, 2: 2, 3: 3, 5: 4, 4: 4}[quantity(asked["type"])], (step["step"], tx_type)
    assert sender == signer, step["step"]
    assert Account.recover_transaction(raw) == signer, step["step"]  # a second, independent decoder
    expected_names = set(LAYOUT[tx_type]) | ({"chainId"} if "chainId" in asked else set())
    assert set(fields) == expected_names, (step["step"], sorted(fields))
    for name, value in fields.items():
        assert value == asked_field(name, asked[name]), (step["step"], name, value, asked[name])
    if tx_type == 0:  # EIP-155 v with a chainId, 27/28 without
        base_v = quantity(asked["chainId"]) * 2 + 35 if "chainId" in asked else 27
        assert v in (base_v, base_v + 1), (step["step"], v)
    return fields


def authorization_digest(chain_id: int, address: str, nonce: int) -> bytes:
    # EIP-7702: keccak256(MAGIC || rlp([chain_id, address, nonce])), MAGIC = 0x05.
    return keccak(b"\x05" + rlp.encode([chain_id, bytes.fromhex(address[2:]), nonce]))


# ---- ERC-4337 user-operation hashes --------------------------------------------------------------
# Written out from eth-infinitism/account-abstraction: v0.6.0 contracts/interfaces/UserOperation.sol
# (UserOperationLib.pack/hash) and v0.7.0 contracts/core/UserOperationLib.sol (encode/hash), with
# EntryPoint.getUserOpHash = keccak256(abi.encode(userOp.hash(), address(this), block.chainid)).

def addr(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def data(value: str | None) -> bytes:
    return bytes.fromhex((value or "0x")[2:])


def user_op_hash(structured: dict, chain_id: int) -> bytes:
    if "useropV06" in structured:
        op = structured["useropV06"]
        entrypoint = op.get("entrypoint", ENTRYPOINT_V06)
        packed = abi_encode(
            ["address", "uint256", "bytes32", "bytes32", "uint256", "uint256", "uint256", "uint256", "uint256",
             "bytes32"],
            [addr(op["sender"]), quantity(op["nonce"]), keccak(data(op.get("initCode"))), keccak(data(op["callData"])),
             quantity(op["callGasLimit"]), quantity(op["verificationGasLimit"]), quantity(op["preVerificationGas"]),
             quantity(op["maxFeePerGas"]), quantity(op["maxPriorityFeePerGas"]),
             keccak(data(op.get("paymasterAndData")))])
    else:
        op = structured["useropV07"]
        entrypoint = op.get("entrypoint", ENTRYPOINT_V07)
        init_code = addr(op["factory"]) + data(op.get("factoryData")) if op.get("factory") else b""
        account_gas_limits = (quantity(op["verificationGasLimit"]) << 128
                              | quantity(op["callGasLimit"])).to_bytes(32, "big")
        gas_fees = (quantity(op["maxPriorityFeePerGas"]) << 128 | quantity(op["maxFeePerGas"])).to_bytes(32, "big")
        paymaster_and_data = (
            addr(op["paymaster"])
            + quantity(op.get("paymasterVerificationGasLimit", "0")).to_bytes(16, "big")
            + quantity(op.get("paymasterPostOpGasLimit", "0")).to_bytes(16, "big")
            + data(op.get("paymasterData"))
        ) if op.get("paymaster") else b""
        packed = abi_encode(
            ["address", "uint256", "bytes32", "bytes32", "bytes32", "uint256", "bytes32", "bytes32"],
            [addr(op["sender"]), quantity(op["nonce"]), keccak(init_code), keccak(data(op["callData"])),
             account_gas_limits, quantity(op["preVerificationGas"]), gas_fees, keccak(paymaster_and_data)])
    return keccak(abi_encode(["bytes32", "address", "uint256"], [keccak(packed), addr(entrypoint), chain_id]))


def assert_user_op_signed(step: dict, signer: str):
    answer = ok(step)
    expected = user_op_hash(step["asked"]["structuredMessage"], step["asked"]["chainId"])
    assert answer["message"] == "0x" + expected.hex(), step["step"]
    # Accounts check toEthSignedMessageHash(userOpHash): EIP-191 over the hash's 32 bytes.
    assert_personal_signature(answer["signature"], expected, signer)


def assert_typed_data_signed(step: dict, signer: str):
    typed = step["asked"]["typedData"]
    if "EIP712Domain" not in typed["types"]:
        # viem's rule: the domain type lists the domain's members in EIP-712's order.
        order = [("name", "string"), ("version", "string"), ("chainId", "uint256"),
                 ("verifyingContract", "address"), ("salt", "bytes32")]
        domain_type = [{"name": n, "type": t} for n, t in order if n in typed["domain"]]
        typed = {**typed, "types": {"EIP712Domain": domain_type, **typed["types"]}}
    signable = encode_typed_data(full_message=typed)
    # Anchor eth-account's encoder to the digest EIP-712 prints for this very message.
    assert keccak(b"\x19" + signable.version + signable.header + signable.body).hex() == EIP712_MAIL_DIGEST
    signature = unprefixed_hex(ok(step)["signature"])
    r, s, v = rsv(signature)
    assert Account.recover_message(signable, signature=signature) == signer
    assert recover_digest(bytes.fromhex(EIP712_MAIL_DIGEST), v - 27, r, s) == signer


def assert_authorization_signed(step: dict, signer: str):
    asked = step["asked"]["authorization"]
    signed = ok(step)["signedAuthorization"]
    assert set(signed) == {"chainId", "address", "nonce", "yParity", "r", "s"}
    echoed = ("chainId", "address", "nonce")
    assert [signed[k] for k in echoed] == [asked[k] for k in echoed], (signed, asked)
    assert type(signed["nonce"]) is int and signed["yParity"] in (0, 1)
    assert re.fullmatch(r"0x[0-9a-f]+", signed["r"]) and re.fullmatch(r"0x[0-9a-f]+", signed["s"]), signed
    assert quantity(signed["s"]) <= SECP256K1_N // 2
    digest = authorization_digest(quantity(asked["chainId"]), asked["address"], asked["nonce"])
    assert recover_digest(digest, signed["yParity"], quantity(signed["r"]), quantity(signed["s"])) == signer


# ---- the tests ---------------------------------------------------------------------------------

def test_every_exported_evm_and_token_function_was_driven(flow):
    called = {s["step"].split(" ")[0].split("#")[0] for s in flow.steps}
    assert {"createEoa", "listEoas", "signMessage", "signTypedData", "signTransaction", "signAuthorization",
            "signStructuredMessage", "createAccessToken", "listAccessTokens", "revokeAccessToken",
            "createSignedAccessToken", "parseTransaction+signTransaction"} <= called, sorted(called)
    threw = [s for s in flow.steps if isinstance(s["result"], dict) and "threw" in s["result"]]
    assert not threw, threw


def test_eoas_are_created_checksummed_and_listed_in_pages(flow):
    for i, address in enumerate(flow.eoas):
        step = flow.one(f"createEoa#{i}")
        eoa = ok(step)
        assert set(eoa) == {"id", "address", "metadata", "createdAt", "updatedAt"}
        assert to_checksum_address(address) == address  # EIP-55
        assert eoa["metadata"] == step["asked"]["metadata"]
    assert len(set(flow.eoas)) == 3
    pages = {json.dumps(s["asked"], sort_keys=True): ok(s) for s in flow.all("listEoas")}
    first, second, past_end, default = (pages[json.dumps(p, sort_keys=True)] for p in
                                        ({"page": 1, "pageSize": 2}, {"page": 2, "pageSize": 2},
                                         {"page": 3, "pageSize": 2}, {}))
    assert [e["address"] for e in first["items"] + second["items"]] == flow.eoas  # creation order
    assert (first["page"], first["pageSize"], first["totalRecords"]) == (1, 2, 3)
    assert past_end["items"] == [] and past_end["totalRecords"] == 3
    assert (default["page"], default["pageSize"], [e["address"] for e in default["items"]]) == (1, 20, flow.eoas)


def test_messages_text_and_hex_recover_to_the_eoa(flow):
    steps = flow.all("signMessage")
    assert {s["asked"].get("format") for s in steps} == {"text", "hex", None}
    for step in steps:
        assert_personal_signature(ok(step)["signature"], message_bytes(step["asked"]), flow.pay_eoa)


def test_typed_data_eip712_mail_example_recovers(flow):
    assert_typed_data_signed(flow.one("signTypedData"), flow.pay_eoa)


def test_typed_data_without_domain_type_signs_the_same_digest(flow):
    step = flow.one("signTypedData without EIP712Domain")
    assert "EIP712Domain" not in step["asked"]["typedData"]["types"]
    assert_typed_data_signed(step, flow.pay_eoa)


def test_authorizations_sign_the_eip7702_tuple(flow):
    for step in flow.all("signAuthorization"):
        assert_authorization_signed(step, flow.pay_eoa)


@pytest.mark.parametrize("name", ["legacy", "legacy+chainId", "legacy create", "eip2930", "eip1559",
                                  "eip1559 create", "eip4844", "eip7702 (0x05)"])
def test_transaction_decodes_to_what_was_asked_and_recovers(flow, name):
    step = flow.one(f"signTransaction {name}")
    fields = assert_transaction_signed_as_asked(step, flow.pay_eoa)
    if name.endswith("create"):
        assert fields["to"] is None
    if name == "eip7702 (0x05)":
        # Each tuple in the list is the EOA's own, as signAuthorization made it.
        for entry in fields["authorizationList"]:
            digest = authorization_digest(entry["chainId"], entry["address"], entry["nonce"])
            assert recover_digest(digest, entry["yParity"], entry["r"], entry["s"]) == flow.pay_eoa


def test_client_parse_transaction_output_signs_as_the_viem_style_input_asked(flow):
    step = flow.one("parseTransaction+signTransaction eip1559 from numbers")
    client_tx = step["asked"]["clientTx"]
    # What the caller meant, by EIP-1559 field names: the client's gas/data spellings mapped.
    meant = {"type": "0x02", "accessList": [], "gasLimit": client_tx["gas"], "input": client_tx["data"],
             **{k: client_tx[k] for k in ("chainId", "nonce", "maxFeePerGas", "maxPriorityFeePerGas", "to", "value")}}
    assert_transaction_signed_as_asked(step, flow.pay_eoa, asked=meant)


def test_client_7702_shapes_without_nonce_are_refused(flow):
    # transaction-types.ts's SignedAuthorization has no nonce, and parseTransaction drops it (12.5.2).
    strict = flow.one("signTransaction eip7702 without nonce")
    assert all("nonce" not in a for a in strict["asked"]["transaction"]["authorizationList"])
    refused(strict, "invalid_input")
    parsed = flow.one("parseTransaction+signTransaction eip7702 from viem authorization")
    assert all("nonce" in a for a in parsed["asked"]["clientTx"]["authorizationList"])
    assert all("nonce" not in a for a in parsed["asked"]["transaction"]["authorizationList"]), "client kept nonce"
    refused(parsed, "invalid_input")


def test_blob_sidecar_in_the_clients_flattened_shape_is_refused(flow):
    refused(flow.one("signTransaction eip4844 with sidecar"), "invalid_input")


@pytest.mark.parametrize("name", ["useropV06 default entrypoint", "useropV06 own entrypoint",
                                  "useropV07 default entrypoint", "useropV07 no factory, no paymaster"])
def test_user_operation_hash_is_the_entrypoints_and_signature_recovers(flow, name):
    assert_user_op_signed(flow.one(f"signStructuredMessage {name}"), flow.pay_eoa)


def test_user_operation_without_chainid_is_refused(flow):
    # The client's type makes chainId optional; the hash commits to it, so a Vault cannot guess it.
    refused(flow.one("signStructuredMessage without chainId"), "invalid_input")


def test_access_token_is_created_with_its_policies_as_sent(flow):
    step = flow.one("createAccessToken")
    token = ok(step)
    assert set(token) == {"accessToken", "id", "issuerId", "issuerType", "policies", "expiresAt", "metadata",
                          "createdAt", "updatedAt", "revokedAt", "isRotated"}
    assert re.fullmatch(r"vt_act_[0-9a-f]{64}", token["accessToken"])
    assert (token["issuerId"], token["issuerType"]) == (flow.account_id, "serviceAccount")
    assert token["policies"] == step["asked"]["policies"]
    assert {p["type"] for p in token["policies"]} >= {"eoa:signMessage", "eoa:signTransaction", "eoa:read",
                                                      "eoa:create", "accessToken:read"}
    assert token["metadata"] == step["asked"]["metadata"]
    asked_expiry = datetime.fromisoformat(step["asked"]["expiresAt"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(token["expiresAt"].replace("Z", "+00:00")) == asked_expiry
    assert token["expiresAt"].endswith("Z")
    assert token["revokedAt"] is None and token["isRotated"] is False


ALLOWED_AS_TOKEN = ["signMessage allowed", "signTypedData allowed", "signTransaction allowed",
                    "signAuthorization allowed", "signStructuredMessage allowed", "createEoa allowed"]
DENIED_AS_TOKEN = ["signMessage denied by messagePattern", "signMessage denied by chainId",
                   "signMessage denied by allowlist", "signTypedData denied by metadata",
                   "signTransaction denied by value", "signTransaction denied by chainId",
                   "signAuthorization denied", "signStructuredMessage denied",
                   "createEoa denied by required", "createEoa denied by allowed"]


def test_base_token_allowed_requests_are_really_signed(flow):
    step = lambda name: flow.one(f"token {name}")  # noqa: E731
    assert_personal_signature(ok(step("signMessage allowed"))["signature"],
                              message_bytes(step("signMessage allowed")["asked"]), flow.pay_eoa)
    assert_typed_data_signed(step("signTypedData allowed"), flow.pay_eoa)
    assert_transaction_signed_as_asked(step("signTransaction allowed"), flow.pay_eoa)
    assert_authorization_signed(step("signAuthorization allowed"), flow.pay_eoa)
    assert_user_op_signed(step("signStructuredMessage allowed"), flow.pay_eoa)
    made = ok(step("createEoa allowed"))
    admin_view = ok(flow.one("admin listEoas after token create"))
    # The token acts for its account: the EOA it made is the account's; the denied ones were not made.
    assert [e["address"] for e in admin_view["items"]] == flow.eoas + [made["address"]]
    assert admin_view["items"][-1]["metadata"] == step("createEoa allowed")["asked"]["metadata"]


@pytest.mark.parametrize("name", DENIED_AS_TOKEN)
def test_base_token_denied_by_its_policies(flow, name):
    refused(flow.one(f"token {name}"), "auth_insufficient_scope")


def test_base_token_lists_only_what_its_read_policies_match(flow):
    listed = ok(flow.one("token listEoas"))
    assert [e["address"] for e in listed["items"]] == [flow.eoas[0], flow.eoas[2]]  # team "pay" only
    tokens = ok(flow.one("token listAccessTokens"))
    base = ok(flow.one("createAccessToken"))
    assert [t["id"] for t in tokens["items"]] == [base["id"]] and tokens["totalRecords"] == 1


@pytest.mark.parametrize("name", ["createAccessToken refused", "revokeAccessToken refused",
                                  "getServiceAccount refused"])
def test_base_token_cannot_act_as_the_admin_key(flow, name):
    refused(flow.one(f"token {name}"), "auth_unsupported_operation")


def b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_signed_access_token_from_the_client_narrows_its_base(flow):
    base_token = ok(flow.one("createAccessToken"))["accessToken"]
    sat_step = flow.one("createSignedAccessToken")
    sat = sat_step["result"]
    assert sat.startswith("vt_sat_")
    header, claims, signature = sat[len("vt_sat_"):].split(".")
    assert json.loads(b64url(header)) == {"alg": "HS256"}
    assert set(json.loads(b64url(claims))) == {"encrypted_token", "ephemeral_public_key", "nonce", "exp", "iat",
                                               "policies"}
    key = hashlib.sha256(base_token.encode()).digest()
    assert hmac.compare_digest(hmac.new(key, f"{header}.{claims}".encode(), "sha256").digest(), b64url(signature))
    allowed = flow.one("sat signMessage allowed")
    assert_personal_signature(ok(allowed)["signature"], message_bytes(allowed["asked"]), flow.pay_eoa)
    for name in ("signMessage narrowed by its policies", "signMessage still bound by the base",
                 "signTypedData not in its policies"):
        refused(flow.one(f"sat {name}"), "auth_insufficient_scope")
    refused(flow.one("sat signMessage expired"), "auth_invalid_access_token")


def test_list_masks_tokens_and_revocation_kills_the_token_and_its_signed_tokens(flow):
    base = ok(flow.one("createAccessToken"))
    other = ok(flow.one("createAccessToken other"))
    listed = ok(flow.one("listAccessTokens"))
    assert [t["id"] for t in listed["items"]] == [base["id"], other["id"]] and listed["totalRecords"] == 2
    for item, made in zip(listed["items"], (base, other)):
        assert item["accessToken"] == "vt_act_…" + made["accessToken"][-4:]  # never the token (6.5)
        assert item["policies"] == made["policies"] and item["revokedAt"] is None
    revoked = ok(flow.one("revokeAccessToken"))
    assert revoked["id"] == base["id"] and revoked["revokedAt"] is not None
    assert revoked["updatedAt"] > base["updatedAt"]  # same ISO format: text order is time order
    refused(flow.one("revoked token refused"), "auth_invalid_access_token")
    refused(flow.one("revoked base kills its signed token"), "auth_invalid_access_token")
    again = ok(flow.one("revokeAccessToken again"))
    assert again["revokedAt"] == revoked["revokedAt"]  # the first revocation stays
    after = ok(flow.one("listAccessTokens after revoke"))
    assert (after["page"], after["pageSize"], after["totalRecords"]) == (1, 1, 2)
    assert [(t["id"], t["revokedAt"]) for t in after["items"]] == [(base["id"], revoked["revokedAt"])]
