"""An independent model of the EVM encodings of spec §12.3, for the eoa suite.

Nothing here trusts a Vault: signed transactions are decoded with the ``rlp`` package and their
senders recovered with eth-keys from signing hashes this module computes from the EIPs' field
lists; EIP-191 and EIP-712 digests come from eth-account, an independent library; the ERC-4337
user-operation hashes are written out from the EntryPoint sources. Nothing here talks to a Vault.

Sources of the layouts:
  legacy and EIP-155 https://eips.ethereum.org/EIPS/eip-155
  EIP-2718 typed envelopes https://eips.ethereum.org/EIPS/eip-2718
  EIP-2930 https://eips.ethereum.org/EIPS/eip-2930, EIP-1559 https://eips.ethereum.org/EIPS/eip-1559,
  EIP-4844 https://eips.ethereum.org/EIPS/eip-4844, EIP-7702 https://eips.ethereum.org/EIPS/eip-7702
  ERC-4337 EntryPoint: eth-infinitism/account-abstraction v0.6.0 (UserOperationLib.pack/hash,
  EntryPoint.getUserOpHash) and v0.7.0 (UserOperationLib.encode over PackedUserOperation)
"""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass

import rlp
from eth_keys import keys
from eth_utils import keccak, to_checksum_address

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
U64_MAX = 2**64 - 1
U128_MAX = 2**128 - 1

# Canonical EntryPoint deployments named by spec §12.3.
ENTRY_POINT_V06 = "0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789"
ENTRY_POINT_V07 = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"


class ModelError(Exception):
    """The Vault's output does not decode as the EIPs define it."""


@functools.cache
def eth_account():
    """eth-account, imported on first use: it pulls py_ecc, which raises the recursion limit to
    100000 on import; with that limit the C JSON scanner can overflow the C stack on the deep
    bodies the errors suite sends (a crash, not a RecursionError), so the limit is put back."""
    saved = min(sys.getrecursionlimit(), 1000)
    import eth_account as module
    from eth_account import messages  # noqa: F401  (loaded now, under the restored limit below)

    sys.setrecursionlimit(saved)
    return module


# ---- messages (EIP-191, EIP-712) ----------------------------------------------------------------

def personal_digest(message: bytes) -> bytes:
    """EIP-191 version 0x45: keccak256("\\x19Ethereum Signed Message:\\n" || len || message)."""
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


def recover_personal(message: bytes, signature: bytes) -> str:
    """eth-account's own recovery of an EIP-191 signature (personal_sign)."""
    module = eth_account()
    return module.Account.recover_message(module.messages.encode_defunct(primitive=message), signature=signature)


def typed_data_digest(typed_data: dict) -> bytes:
    """eth-account's EIP-712 (eth_signTypedData_v4) digest: keccak256(0x19 0x01 || domainSeparator || hashStruct)."""
    signable = eth_account().messages.encode_typed_data(full_message=typed_data)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


# EIP-712's own example (https://eips.ethereum.org/EIPS/eip-712, "Test Cases": Example.js,
# Example.sol), with the digest that the EIP's Example.js prints for it.
MAIL_TYPED_DATA = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"},
        ],
        "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
        "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
                 {"name": "contents", "type": "string"}],
    },
    "primaryType": "Mail",
    "domain": {"name": "Ether Mail", "version": "1", "chainId": 1,
               "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
    "message": {
        "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
        "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
        "contents": "Hello, Bob!",
    },
}
MAIL_DIGEST = bytes.fromhex("be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2")


# ---- signatures -------------------------------------------------------------------------------

def recover(digest: bytes, y_parity: int, r: int, s: int) -> str:
    """The EIP-55 address whose key made (y_parity, r, s) over ``digest`` (eth-keys)."""
    if y_parity not in (0, 1) or not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N):
        raise ModelError(f"not a secp256k1 signature: yParity {y_parity}, r {r:#x}, s {s:#x}")
    try:
        signature = keys.Signature(vrs=(y_parity, r, s))
        return signature.recover_public_key_from_msg_hash(digest).to_checksum_address()
    except Exception as error:  # eth-keys raises several types for a point that does not recover
        raise ModelError(f"the signature does not recover: {error}") from None


def address_of_key(private_key: bytes) -> str:
    return keys.PrivateKey(private_key).public_key.to_checksum_address()


def split_rsv(signature: bytes) -> tuple[int, int, int]:
    """r, s and v of a 65-byte r || s || v signature."""
    if len(signature) != 65:
        raise ModelError(f"a signature is 65 bytes, not {len(signature)}")
    return int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]


# ---- transactions -----------------------------------------------------------------------------

# Field names of each transaction's RLP list, before the signature, as the EIPs list them.
UNSIGNED_FIELDS = {
    0: ("nonce", "gasPrice", "gasLimit", "to", "value", "input"),
    1: ("chainId", "nonce", "gasPrice", "gasLimit", "to", "value", "input", "accessList"),
    2: ("chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gasLimit", "to", "value", "input", "accessList"),
    3: ("chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gasLimit", "to", "value", "input", "accessList",
        "maxFeePerBlobGas", "blobVersionedHashes"),
    4: ("chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gasLimit", "to", "value", "input", "accessList",
        "authorizationList"),
}
QUANTITIES = frozenset({"chainId", "nonce", "gasPrice", "gasLimit", "value", "maxPriorityFeePerGas", "maxFeePerGas",
                        "maxFeePerBlobGas"})


def rlp_int(item, what: str) -> int:
    """An RLP scalar: a byte string without leading zeros (the canonical encoding the EIPs use)."""
    if not isinstance(item, bytes):
        raise ModelError(f"{what} is a list, not a scalar")
    if item[:1] == b"\x00":
        raise ModelError(f"{what} has a leading zero byte (non-canonical RLP integer)")
    return int.from_bytes(item, "big")


def _rlp_bytes(item, what: str, length: int | None = None) -> bytes:
    if not isinstance(item, bytes):
        raise ModelError(f"{what} is a list, not a byte string")
    if length is not None and len(item) != length:
        raise ModelError(f"{what} is {len(item)} bytes, not {length}")
    return item


def _rlp_list(item, what: str) -> list:
    if not isinstance(item, list):
        raise ModelError(f"{what} is a byte string, not a list")
    return item


@dataclass
class DecodedTransaction:
    type: int
    fields: dict  # the transaction's fields in the harness's terms (ints, bytes, lists)
    y_parity: int
    r: int
    s: int
    v: int | None  # legacy only
    chain_id: int | None
    signing_hash: bytes

    @property
    def sender(self) -> str:
        return recover(self.signing_hash, self.y_parity, self.r, self.s)


def _read_field(name: str, item, what: str):
    if name in QUANTITIES:
        return rlp_int(item, what)
    if name == "to":
        to = _rlp_bytes(item, what)
        if len(to) not in (0, 20):
            raise ModelError(f"{what} is {len(to)} bytes: 20, or empty for a contract creation")
        return to
    if name == "input":
        return _rlp_bytes(item, what)
    if name == "accessList":
        entries = []
        for i, entry in enumerate(_rlp_list(item, what)):
            entry = _rlp_list(entry, f"{what}[{i}]")
            if len(entry) != 2:
                raise ModelError(f"{what}[{i}] has {len(entry)} items, not [address, storageKeys]")
            keys_ = [_rlp_bytes(k, f"{what}[{i}].storageKeys", 32) for k in _rlp_list(entry[1], f"{what}[{i}].storageKeys")]
            entries.append((_rlp_bytes(entry[0], f"{what}[{i}].address", 20), keys_))
        return entries
    if name == "blobVersionedHashes":
        return [_rlp_bytes(h, f"{what}[{i}]", 32) for i, h in enumerate(_rlp_list(item, what))]
    if name == "authorizationList":
        entries = []
        for i, entry in enumerate(_rlp_list(item, what)):
            entry = _rlp_list(entry, f"{what}[{i}]")
            if len(entry) != 6:
                raise ModelError(f"{what}[{i}] has {len(entry)} items, not [chainId, address, nonce, yParity, r, s]")
            entries.append((rlp_int(entry[0], f"{what}[{i}].chainId"), _rlp_bytes(entry[1], f"{what}[{i}].address", 20),
                            rlp_int(entry[2], f"{what}[{i}].nonce"), rlp_int(entry[3], f"{what}[{i}].yParity"),
                            rlp_int(entry[4], f"{what}[{i}].r"), rlp_int(entry[5], f"{what}[{i}].s")))
        return entries
    raise AssertionError(name)


def decode_transaction(raw: bytes) -> DecodedTransaction:
    """Decode a signed transaction's network encoding: RLP for legacy, ``type || RLP`` (EIP-2718)
    for the typed ones; compute its signing hash as its EIP defines it."""
    if not raw:
        raise ModelError("empty transaction")
    if raw[0] >= 0xC0:  # an RLP list: a legacy transaction
        tx_type, payload = 0, raw
    elif raw[0] in (1, 2, 3, 4):
        tx_type, payload = raw[0], raw[1:]
    else:
        raise ModelError(f"transaction type byte {raw[0]:#04x} is none of legacy, 0x01-0x04")
    try:
        items = rlp.decode(payload, strict=True)
    except rlp.exceptions.DecodingError as error:
        raise ModelError(f"the transaction is not canonical RLP: {error}") from None
    items = _rlp_list(items, "the transaction")
    names = UNSIGNED_FIELDS[tx_type]
    if len(items) != len(names) + 3:
        raise ModelError(f"a type {tx_type:#04x} transaction has {len(names) + 3} RLP items, not {len(items)}")
    fields = {name: _read_field(name, item, name) for name, item in zip(names, items)}
    v_or_parity, r, s = (rlp_int(item, what) for item, what in zip(items[-3:], ("v/yParity", "r", "s")))
    unsigned = items[:len(names)]
    if tx_type == 0:
        if v_or_parity in (27, 28):
            chain_id, y_parity = None, v_or_parity - 27
            signing_hash = keccak(rlp.encode(unsigned))
        elif v_or_parity >= 35:
            chain_id, y_parity = (v_or_parity - 35) // 2, (v_or_parity - 35) % 2
            signing_hash = keccak(rlp.encode(unsigned + [_scalar(chain_id), b"", b""]))  # EIP-155
        else:
            raise ModelError(f"legacy v is {v_or_parity}: 27/28, or chainId * 2 + 35/36 (EIP-155)")
        return DecodedTransaction(0, fields, y_parity, r, s, v_or_parity, chain_id, signing_hash)
    signing_hash = keccak(bytes([tx_type]) + rlp.encode(unsigned))
    return DecodedTransaction(tx_type, fields, v_or_parity, r, s, None, fields["chainId"], signing_hash)


def _scalar(number: int) -> bytes:
    return number.to_bytes((number.bit_length() + 7) // 8, "big")


# ---- the harness's requests, in the same terms --------------------------------------------------

_HEX_QUANTITY = re.compile(r"0x[0-9a-fA-F]+")
_DECIMAL = re.compile(r"[0-9]+")


def quantity(value) -> int:
    """A quantity as spec §12.3 writes it: 0x hex, a decimal string or a JSON integer."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a quantity")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _HEX_QUANTITY.fullmatch(value):
        return int(value, 16)
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return int(value)
    raise ValueError(f"not a quantity: {value!r}")


def hex_bytes(value: str) -> bytes:
    assert value.startswith("0x") and len(value) % 2 == 0, value
    return bytes.fromhex(value[2:])


def expected_fields(tx: dict) -> dict:
    """What a transaction request asks for, in the terms of :func:`decode_transaction`."""
    tx_type = {"0x00": 0, "0x01": 1, "0x02": 2, "0x03": 3, "0x04": 4, "0x05": 4}[tx["type"]]
    out = {}
    for name in UNSIGNED_FIELDS[tx_type]:
        value = tx.get(name)
        if name in QUANTITIES:
            out[name] = quantity(value)
        elif name == "to":
            out[name] = b"" if value is None else hex_bytes(value)
        elif name == "input":
            out[name] = hex_bytes(value)
        elif name == "accessList":
            out[name] = [(hex_bytes(e["address"]), [hex_bytes(k) for k in e["storageKeys"]]) for e in value]
        elif name == "blobVersionedHashes":
            out[name] = [hex_bytes(h) for h in value]
        elif name == "authorizationList":
            out[name] = [(quantity(a["chainId"]), hex_bytes(a["address"]), quantity(a["nonce"]), a["yParity"],
                          quantity(a["r"]), quantity(a["s"])) for a in value]
    return out


# ---- EIP-7702 authorizations ------------------------------------------------------------------

def authorization_digest(chain_id: int, address: str, nonce: int) -> bytes:
    """EIP-7702: keccak256(MAGIC || rlp([chain_id, address, nonce])), MAGIC = 0x05."""
    return keccak(b"\x05" + rlp.encode([_scalar(chain_id), hex_bytes(address), _scalar(nonce)]))


# ---- ERC-4337 user operations -------------------------------------------------------------------

def _word(number: int) -> bytes:
    return number.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    return bytes(12) + hex_bytes(address)


def user_op_hash_v06(op: dict, chain_id: int) -> bytes:
    """v0.6 EntryPoint.getUserOpHash: keccak256(abi.encode(keccak256(pack(op)), address(this), block.chainid)),
    pack(op) = abi.encode(sender, nonce, keccak256(initCode), keccak256(callData), callGasLimit,
    verificationGasLimit, preVerificationGas, maxFeePerGas, maxPriorityFeePerGas, keccak256(paymasterAndData))."""
    packed = b"".join([
        _address_word(op["sender"]), _word(quantity(op["nonce"])), keccak(hex_bytes(op.get("initCode", "0x"))),
        keccak(hex_bytes(op["callData"])), _word(quantity(op["callGasLimit"])),
        _word(quantity(op["verificationGasLimit"])), _word(quantity(op["preVerificationGas"])),
        _word(quantity(op["maxFeePerGas"])), _word(quantity(op["maxPriorityFeePerGas"])),
        keccak(hex_bytes(op.get("paymasterAndData", "0x"))),
    ])
    entry_point = op.get("entrypoint", ENTRY_POINT_V06)
    return keccak(keccak(packed) + _address_word(entry_point) + _word(chain_id))


def user_op_hash_v07(op: dict, chain_id: int) -> bytes:
    """v0.7 EntryPoint.getUserOpHash over PackedUserOperation: abi.encode(sender, nonce,
    keccak256(initCode), keccak256(callData), accountGasLimits, preVerificationGas, gasFees,
    keccak256(paymasterAndData)), then as v0.6; the client's unpacked fields packed as spec §12.3 says."""
    def q(name):
        return quantity(op.get(name, "0x0"))

    init_code = hex_bytes(op["factory"]) + hex_bytes(op.get("factoryData", "0x")) if op.get("factory") else b""
    paymaster_and_data = b""
    if op.get("paymaster"):
        paymaster_and_data = (hex_bytes(op["paymaster"]) + q("paymasterVerificationGasLimit").to_bytes(16, "big")
                              + q("paymasterPostOpGasLimit").to_bytes(16, "big") + hex_bytes(op.get("paymasterData", "0x")))
    account_gas_limits = q("verificationGasLimit").to_bytes(16, "big") + q("callGasLimit").to_bytes(16, "big")
    gas_fees = q("maxPriorityFeePerGas").to_bytes(16, "big") + q("maxFeePerGas").to_bytes(16, "big")
    packed = b"".join([
        _address_word(op["sender"]), _word(q("nonce")), keccak(init_code), keccak(hex_bytes(op["callData"])),
        account_gas_limits, _word(q("preVerificationGas")), gas_fees, keccak(paymaster_and_data),
    ])
    entry_point = op.get("entrypoint", ENTRY_POINT_V07)
    return keccak(keccak(packed) + _address_word(entry_point) + _word(chain_id))


def checksum(address: str) -> str:
    return to_checksum_address(address)
