"""Sans-IO EVM signing for EOAs (docs/spec/12-eoa.md): messages, typed data, transactions.

Everything here is a pure function of a private key and the client's JSON (the published
client's ``SignMessageOptions``, ``typedData`` and ``EthereumTypedTransaction`` shapes). The
cryptography and the RLP encodings are eth-account's; this module only translates the client's
wire shapes into eth-account's and turns every malformed input into :class:`EvmInputError`, so
an operation can answer ``invalid_input`` instead of a traceback.
"""

from __future__ import annotations

import re
import sys

# Capped at CPython's default: if eth_account was imported before us, the limit is already raised.
_RECURSION_LIMIT = min(sys.getrecursionlimit(), 1000)
from eth_account import Account  # noqa: E402
from eth_account.messages import encode_defunct, encode_typed_data  # noqa: E402

# py_ecc (under eth_account) raises the recursion limit to 100000 on import. With that limit the
# standard library's C JSON scanner overflows the C stack on a deeply nested body and the whole
# process dies (SIGSEGV) instead of raising RecursionError: put the interpreter's limit back.
sys.setrecursionlimit(_RECURSION_LIMIT)

_HEX = re.compile(r"0x[0-9a-fA-F]*")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
U256_MAX = 2**256 - 1
U64_MAX = 2**64 - 1


class EvmInputError(ValueError):
    """The request's message, typed data or transaction is malformed or unsupported."""


def new_private_key(random_bytes) -> bytes:
    """A secp256k1 private key from the enclave's randomness, rejection-sampled into [1, n)."""
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    while True:
        candidate = random_bytes(32)
        if 0 < int.from_bytes(candidate, "big") < order:
            return candidate


def address_of(private_key: bytes) -> str:
    """The EIP-55 checksummed address of a private key."""
    return Account.from_key(private_key).address


def normalise_address(value: object, what: str) -> str:
    """An address in lowercase, for comparison; any valid 20-byte hex is accepted."""
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise EvmInputError(f"{what} must be a 0x-prefixed 20-byte hex address")
    return value.lower()


def _hex_bytes(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not _HEX.fullmatch(value) or len(value) % 2:
        raise EvmInputError(f"{what} must be 0x-prefixed hex with an even number of digits")
    return bytes.fromhex(value[2:])


def _quantity(value: object, what: str, maximum: int = U256_MAX) -> int:
    """A hex quantity ("0x1a"); decimal strings and JSON integers are accepted too, because the
    client's ``Authorization.nonce`` is a number and its U256 fields are described as either."""
    if isinstance(value, bool):
        raise EvmInputError(f"{what} must be a quantity")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"0x[0-9a-fA-F]+", value):
        number = int(value, 16)
    elif isinstance(value, str) and re.fullmatch(r"[0-9]+", value):
        number = int(value)
    else:
        raise EvmInputError(f"{what} must be a hex or decimal quantity")
    if not 0 <= number <= maximum:
        raise EvmInputError(f"{what} is out of range")
    return number


def _signature_hex(signed) -> str:
    # Wire encoding (PROTOCOL.md section 5): lowercase hex without "0x".
    return bytes(signed.signature).hex()


# ---------- EIP-191 ----------


# Each operation comes in two steps: ``prepare_*`` validates the client's input and returns the
# signer, a function of the private key, so an operation can check a token's policies between the
# two (13.4: input first, then policies) and sign only what they allow. ``sign_*`` does both.


def sign_message(private_key: bytes, message: object, fmt: object = "text") -> str:
    return prepare_message(message, fmt)(private_key)


def prepare_message(message: object, fmt: object = "text"):
    """EIP-191 version 0x45 (personal_sign): ``format`` "text" signs the UTF-8 bytes of the
    string, "hex" the bytes the 0x-hex string stands for. Returns the 65-byte r||s||v (v in {27, 28}) as hex without 0x."""
    if not isinstance(message, str):
        raise EvmInputError("options.message must be a string")
    if fmt == "text":
        try:
            encoded = encode_defunct(primitive=message.encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate from JSON ("\ud800") has no UTF-8 bytes to sign
            raise EvmInputError("options.message is not valid Unicode (a lone surrogate)") from None
    elif fmt == "hex":
        encoded = encode_defunct(primitive=_hex_bytes(message, "options.message"))
    else:
        raise EvmInputError('options.format must be "text" or "hex"')
    return lambda private_key: _signature_hex(Account.sign_message(encoded, private_key))


# ---------- EIP-712 ----------


def sign_typed_data(private_key: bytes, typed_data: object) -> str:
    return prepare_typed_data(typed_data)(private_key)


def prepare_typed_data(typed_data: object):
    """EIP-712 ``eth_signTypedData_v4`` of the client's ``{domain, types, primaryType, message}``."""
    if not isinstance(typed_data, dict) or not {"domain", "types", "primaryType", "message"} <= typed_data.keys():
        raise EvmInputError("options.typedData must hold domain, types, primaryType and message")
    try:
        encoded = encode_typed_data(full_message=typed_data)
    except Exception as exc:  # eth-account raises many types for bad typed data
        raise EvmInputError(f"options.typedData is not valid EIP-712: {exc}") from None
    return lambda private_key: _signature_hex(Account.sign_message(encoded, private_key))


# ---------- transactions ----------

# The client sends EIP-7702 as "0x05" (transaction-types.ts, TxEip7702); the EIP's own type is 0x04.
_TYPE_ALIASES = {"0x00": 0, "0x0": 0, "0x01": 1, "0x1": 1, "0x02": 2, "0x2": 2,
                 "0x03": 3, "0x3": 3, "0x04": 4, "0x4": 4, "0x05": 4, "0x5": 4}


def _access_list(value: object) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise EvmInputError("transaction.accessList must be a list")
    entries = []
    for i, entry in enumerate(value):
        if not isinstance(entry, dict) or not isinstance(entry.get("storageKeys", []), list):
            raise EvmInputError(f"transaction.accessList[{i}] must be {{address, storageKeys}}")
        keys = [_hex_bytes(k, f"transaction.accessList[{i}].storageKeys") for k in entry.get("storageKeys", [])]
        if any(len(k) != 32 for k in keys):
            raise EvmInputError(f"transaction.accessList[{i}].storageKeys must be 32-byte values")
        entries.append({
            "address": _checksum(entry.get("address"), f"transaction.accessList[{i}].address"),
            "storageKeys": ["0x" + k.hex() for k in keys],
        })
    return entries


def _checksum(value: object, what: str) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(normalise_address(value, what))


def _authorization_list(value: object) -> list[dict]:
    """EIP-7702 signed authorizations. The client's ``SignedAuthorization`` in
    transaction-types.ts has no ``nonce`` although the EIP's tuple does: we require it."""
    if not isinstance(value, list) or not value:
        raise EvmInputError("transaction.authorizationList must be a non-empty list (EIP-7702)")
    out = []
    for i, auth in enumerate(value):
        what = f"transaction.authorizationList[{i}]"
        if not isinstance(auth, dict):
            raise EvmInputError(f"{what} must be an object")
        if "nonce" not in auth:
            raise EvmInputError(f"{what}.nonce is required (EIP-7702 authorization tuple)")
        y_parity = auth.get("yParity")
        if y_parity not in (0, 1) or isinstance(y_parity, bool):
            raise EvmInputError(f"{what}.yParity must be 0 or 1")
        out.append({
            "chainId": _quantity(auth.get("chainId"), f"{what}.chainId"),
            "address": _checksum(auth.get("address"), f"{what}.address"),
            "nonce": _quantity(auth.get("nonce"), f"{what}.nonce", U64_MAX),
            "yParity": y_parity,
            "r": _quantity(auth.get("r"), f"{what}.r"),
            "s": _quantity(auth.get("s"), f"{what}.s"),
        })
    return out


def to_eth_account_transaction(tx: object) -> dict:
    """The client's ``EthereumTypedTransaction`` as eth-account's transaction dict."""
    if not isinstance(tx, dict):
        raise EvmInputError("options.transaction must be an object")
    tx_type = _TYPE_ALIASES.get(tx.get("type"))
    if tx_type is None:
        raise EvmInputError(f"transaction.type {tx.get('type')!r} is not supported (0x00-0x03, 0x05)")
    # Every field of the client's type is on the wire (its transaction-parser fills the defaults:
    # nonce 0x0, value 0x0, input 0x, to null, accessList []), so a missing one is a malformed
    # request, never a default: a missing `to` must not turn into a contract creation (12.3).
    required = ("nonce", "gasLimit", "to", "value", "input") + (("accessList",) if tx_type else ())
    missing = [name for name in required if name not in tx]
    if missing:
        raise EvmInputError(f"transaction.{missing[0]} is missing (send null for a contract creation's to)")
    out: dict = {
        "nonce": _quantity(tx["nonce"], "transaction.nonce", U64_MAX),
        "gas": _quantity(tx.get("gasLimit"), "transaction.gasLimit", U64_MAX),
        "value": _quantity(tx["value"], "transaction.value"),
        "data": "0x" + _hex_bytes(tx["input"], "transaction.input").hex(),
    }
    to = tx.get("to")
    if to is None:
        if tx_type in (3, 4):  # EIP-4844 and EIP-7702 transactions cannot create contracts
            raise EvmInputError("transaction.to is required for type 0x03 and 0x05 transactions")
        out["to"] = b""  # contract creation: RLP empty string
    else:
        out["to"] = _checksum(to, "transaction.to")
    chain_id = tx.get("chainId")
    if chain_id is not None:
        out["chainId"] = _quantity(chain_id, "transaction.chainId", U64_MAX)
    elif tx_type != 0:
        raise EvmInputError("transaction.chainId is required for typed transactions")
    if tx_type in (0, 1):
        out["gasPrice"] = _quantity(tx.get("gasPrice"), "transaction.gasPrice")
    else:
        out["maxFeePerGas"] = _quantity(tx.get("maxFeePerGas"), "transaction.maxFeePerGas")
        out["maxPriorityFeePerGas"] = _quantity(tx.get("maxPriorityFeePerGas"), "transaction.maxPriorityFeePerGas")
    if tx_type >= 1:
        out["accessList"] = _access_list(tx.get("accessList"))
        out["type"] = tx_type
    if tx_type == 3:
        if any(k in tx for k in ("blobs", "commitments", "proofs")):
            raise EvmInputError("blob sidecars are not supported; send blobVersionedHashes only")
        hashes = tx.get("blobVersionedHashes")
        if not isinstance(hashes, list) or not hashes:
            raise EvmInputError("transaction.blobVersionedHashes must be a non-empty list")
        decoded = [_hex_bytes(h, "transaction.blobVersionedHashes") for h in hashes]
        if any(len(h) != 32 for h in decoded):
            raise EvmInputError("transaction.blobVersionedHashes must be 32-byte hashes")
        out["blobVersionedHashes"] = decoded
        out["maxFeePerBlobGas"] = _quantity(tx.get("maxFeePerBlobGas"), "transaction.maxFeePerBlobGas")
    if tx_type == 4:
        out["authorizationList"] = _authorization_list(tx.get("authorizationList"))
    return out


def sign_transaction(private_key: bytes, tx: object) -> str:
    return prepare_transaction(tx)(private_key)


def prepare_transaction(tx: object):
    """The signed transaction's network encoding, hex without "0x": RLP for 0x00 (EIP-155 when the
    transaction has a chainId), ``type || RLP`` (EIP-2718) for the typed ones."""
    fields = to_eth_account_transaction(tx)

    def sign(private_key: bytes) -> str:
        try:
            signed = Account.sign_transaction(fields, private_key)
        except Exception as exc:  # eth-account validates the dict and raises various types
            raise EvmInputError(f"options.transaction cannot be signed: {exc}") from None
        return bytes(signed.raw_transaction).hex()

    return sign


# ---------- EIP-7702 authorizations ----------


def sign_authorization(private_key: bytes, authorization: object) -> dict:
    return prepare_authorization(authorization)(private_key)


def prepare_authorization(authorization: object):
    """Sign the EIP-7702 tuple: ``keccak256(0x05 || rlp([chainId, address, nonce]))``.

    Answers the client's ``SignedAuthorization``: the request's ``chainId`` and ``address`` as
    given, ``nonce`` and ``yParity`` as JSON numbers, ``r`` and ``s`` as 0x-hex quantities.
    """
    if not isinstance(authorization, dict):
        raise EvmInputError("options.authorization must be an object")
    fields = {
        "chainId": _quantity(authorization.get("chainId"), "authorization.chainId"),
        "address": _checksum(authorization.get("address"), "authorization.address"),
        "nonce": _quantity(authorization.get("nonce"), "authorization.nonce", U64_MAX),
    }

    def sign(private_key: bytes) -> dict:
        signed = Account.sign_authorization(fields, private_key)
        return {
            "chainId": authorization["chainId"],
            "address": authorization["address"],
            "nonce": fields["nonce"],
            "yParity": signed.y_parity,
            "r": hex(signed.r),
            "s": hex(signed.s),
        }

    return sign


# ---------- ERC-4337 user operations ----------

# The canonical EntryPoint deployments (eth-infinitism/account-abstraction releases v0.6.0, v0.7.0).
ENTRY_POINT_V06 = "0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789"
ENTRY_POINT_V07 = "0x0000000071727De22E5E9d8BAf0edAc6f37da032"
U128_MAX = 2**128 - 1


def _user_op_hash(inner: bytes, entry_point: str, chain_id: int) -> bytes:
    from eth_abi import encode
    from eth_utils import keccak

    return keccak(encode(["bytes32", "address", "uint256"], [keccak(inner), entry_point, chain_id]))


def user_operation_hash_v06(op: dict, chain_id: int) -> bytes:
    """``EntryPoint.getUserOpHash`` of v0.6: keccak(abi.encode(keccak(pack(op)), entryPoint, chainId))."""
    from eth_abi import encode
    from eth_utils import keccak

    q = lambda name: _quantity(op.get(name), f"userop.{name}")  # noqa: E731
    b = lambda name: keccak(_hex_bytes(op.get(name, "0x"), f"userop.{name}"))  # noqa: E731
    inner = encode(
        ["address", "uint256", "bytes32", "bytes32", "uint256", "uint256", "uint256", "uint256", "uint256", "bytes32"],
        [_checksum(op.get("sender"), "userop.sender"), q("nonce"), b("initCode"), b("callData"), q("callGasLimit"),
         q("verificationGasLimit"), q("preVerificationGas"), q("maxFeePerGas"), q("maxPriorityFeePerGas"),
         b("paymasterAndData")],
    )
    entry_point = _checksum(op.get("entrypoint", ENTRY_POINT_V06), "userop.entrypoint")
    return _user_op_hash(inner, entry_point, chain_id)


def user_operation_hash_v07(op: dict, chain_id: int) -> bytes:
    """v0.7: the unpacked fields of the client's input packed into ``PackedUserOperation``
    (initCode = factory || factoryData; gas limits and fees as two uint128 halves of a bytes32;
    paymasterAndData = paymaster || uint128 verification gas || uint128 post-op gas || data)."""
    from eth_abi import encode
    from eth_utils import keccak

    q = lambda name, top=U256_MAX: _quantity(op.get(name, "0x0"), f"userop.{name}", top)  # noqa: E731
    h = lambda name: _hex_bytes(op.get(name, "0x"), f"userop.{name}")  # noqa: E731
    init_code = b""
    if op.get("factory") is not None:
        init_code = bytes.fromhex(_checksum(op["factory"], "userop.factory")[2:]) + h("factoryData")
    paymaster_and_data = b""
    if op.get("paymaster") is not None:
        paymaster_and_data = (
            bytes.fromhex(_checksum(op["paymaster"], "userop.paymaster")[2:])
            + q("paymasterVerificationGasLimit", U128_MAX).to_bytes(16, "big")
            + q("paymasterPostOpGasLimit", U128_MAX).to_bytes(16, "big")
            + h("paymasterData")
        )
    account_gas_limits = q("verificationGasLimit", U128_MAX) << 128 | q("callGasLimit", U128_MAX)
    gas_fees = q("maxPriorityFeePerGas", U128_MAX) << 128 | q("maxFeePerGas", U128_MAX)
    inner = encode(
        ["address", "uint256", "bytes32", "bytes32", "bytes32", "uint256", "bytes32", "bytes32"],
        [_checksum(op.get("sender"), "userop.sender"), q("nonce"), keccak(init_code), keccak(h("callData")),
         account_gas_limits.to_bytes(32, "big"), q("preVerificationGas"), gas_fees.to_bytes(32, "big"),
         keccak(paymaster_and_data)],
    )
    entry_point = _checksum(op.get("entrypoint", ENTRY_POINT_V07), "userop.entrypoint")
    return _user_op_hash(inner, entry_point, chain_id)


def sign_structured_message(private_key: bytes, structured: object, chain_id: object) -> dict:
    return prepare_structured_message(structured, chain_id)(private_key)


def prepare_structured_message(structured: object, chain_id: object):
    """Sign a user operation's hash as an EIP-191 message (what ERC-4337 accounts that check
    ``toEthSignedMessageHash(userOpHash)`` verify). Answers ``{signature, message}``, message =
    the 0x-hex user-operation hash."""
    if type(chain_id) is not int or not 0 < chain_id <= U64_MAX:
        raise EvmInputError("options.chainId (a positive integer) is required to hash a user operation")
    if not isinstance(structured, dict) or len(structured) != 1 or not isinstance(next(iter(structured.values())), dict):
        raise EvmInputError("options.structuredMessage must be {useropV06: {...}} or {useropV07: {...}}")
    (kind, op), = structured.items()
    if kind == "useropV06":
        digest = user_operation_hash_v06(op, chain_id)
    elif kind == "useropV07":
        digest = user_operation_hash_v07(op, chain_id)
    else:
        raise EvmInputError("options.structuredMessage must be {useropV06: {...}} or {useropV07: {...}}")

    def sign(private_key: bytes) -> dict:
        signed = Account.sign_message(encode_defunct(primitive=digest), private_key)
        return {"signature": _signature_hex(signed), "message": "0x" + digest.hex()}

    return sign
