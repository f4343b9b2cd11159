"""Published EVM known answers (vectors/evm_kat.json) through the reference's sans-IO signer.

Each case is checked three ways: the reference's output equals the published bytes, the digest
eth-account computes from the client-shaped input equals the published digest, and the signer
recovered from the published signature is the published address (so a wrong vector cannot pass
by agreeing with a wrong implementation).
"""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account._utils.legacy_transactions import Transaction
from eth_account.messages import _hash_eip191_message, encode_defunct, encode_typed_data

from reference.enclave import evm

from ._support import cases, h


@pytest.mark.parametrize(("group", "test"), cases("evm_kat", group_type="Eip191PersonalSign"))
def test_eip191_personal_sign(group, test):
    key, options = h(test["privateKey"]), test["input"]
    signature = evm.sign_message(key, options["message"], options["format"])
    assert signature == test["signature"]
    assert evm.address_of(key) == test["address"]
    encoded = encode_defunct(text=options["message"])
    assert _hash_eip191_message(encoded).hex() == test["digest"]
    assert Account.recover_message(encoded, signature=h(test["signature"])) == test["address"]


@pytest.mark.parametrize(("group", "test"), cases("evm_kat", group_type="Eip712TypedData"))
def test_eip712_typed_data(group, test):
    key = h(test["privateKey"])
    signature = evm.sign_typed_data(key, test["input"])
    assert signature == test["signature"]
    encoded = encode_typed_data(full_message=test["input"])
    assert _hash_eip191_message(encoded).hex() == test["digest"]
    assert Account.recover_message(encoded, signature=h(test["signature"])) == test["address"]


@pytest.mark.parametrize(("group", "test"), cases("evm_kat", group_type="Eip155LegacyTransaction"))
def test_eip155_legacy_transaction(group, test):
    key = h(test["privateKey"])
    raw = evm.sign_transaction(key, test["input"])
    assert raw == test["rawTransaction"]
    assert Account.recover_transaction(h(test["rawTransaction"])) == test["address"]
    decoded = Transaction.from_bytes(h(test["rawTransaction"]))
    assert decoded.v == 37  # chainId 1 * 2 + 35 + yParity 0
    assert decoded.hash().hex() != test["digest"]  # the signing hash excludes the signature ...
    unsigned = Transaction(nonce=decoded.nonce, gasPrice=decoded.gasPrice, gas=decoded.gas, to=decoded.to,
                           value=decoded.value, data=decoded.data, v=1, r=0, s=0)
    assert unsigned.hash().hex() == test["digest"]  # ... and is EIP-155's RLP with (chainId, 0, 0)


@pytest.mark.parametrize(("group", "test"), cases("evm_kat", group_type="Eip7702Authorization"))
def test_eip7702_authorization(group, test):
    import rlp
    from eth_keys import keys
    from eth_utils import keccak

    key, asked = h(test["privateKey"]), test["input"]
    signed = evm.sign_authorization(key, asked)
    signature = h(test["signature"])
    assert (signed["r"], signed["s"], signed["yParity"]) == (
        hex(int.from_bytes(signature[:32], "big")), hex(int.from_bytes(signature[32:64], "big")), signature[64])
    # EIP-7702: the authority signs keccak256(MAGIC 0x05 || rlp([chain_id, address, nonce]))
    digest = keccak(b"\x05" + rlp.encode([int(asked["chainId"], 16), h(asked["address"][2:]), asked["nonce"]]))
    assert digest.hex() == test["digest"]
    recovered = keys.Signature(signature_bytes=signature).recover_public_key_from_msg_hash(digest)
    assert recovered.to_checksum_address() == test["address"] == evm.address_of(key)


@pytest.mark.parametrize(("group", "test"), cases("evm_kat", group_type="Erc4337UserOperationHash"))
def test_erc4337_user_operation_hash(group, test):
    """Published user-operation hashes (viem's test snapshots) through the reference and through the
    harness's independent model: both must give the published digest."""
    from harness.suites import evm_model

    options = test["input"]
    op, chain_id = options["userOperation"], options["chainId"]
    reference_hash = {"v0.6": evm.user_operation_hash_v06, "v0.7": evm.user_operation_hash_v07}[options["version"]]
    model_hash = {"v0.6": evm_model.user_op_hash_v06, "v0.7": evm_model.user_op_hash_v07}[options["version"]]
    assert reference_hash(op, chain_id).hex() == test["digest"]
    assert model_hash(op, chain_id).hex() == test["digest"]
