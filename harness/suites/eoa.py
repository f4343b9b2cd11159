"""EOAs and EVM signing (spec §12): create, list, choosing the key, and every signing operation.

Nothing a Vault answers is taken on trust: every signature is recovered with eth-account or
eth-keys and compared with the EOA's address, every signed transaction is decoded with the
``rlp`` package and compared field by field with what was asked (evm_model.py), and the
ERC-4337 user-operation hashes are computed here from the EntryPoint sources. The only known
answer used, EIP-712's Mail example, comes with the digest the EIP publishes for it. A final
check scans every answer of the run for the private key of any EOA the run saw.

Refusals: a check at level MUST requires the refusal (an encrypted error, spec §4.2);
``eoa/error-codes`` (SHOULD) requires the codes §12 names, as §4.3 makes codes RECOMMENDED.
"""

from __future__ import annotations

import json
import os
import re

from . import evm_model
from ._util import expect_refusal, expect_success, is_uuid, require
from .account_model import parse_timestamp
from .evm_model import ModelError
from .registry import CheckFailed, Context, Level, Observation, check

CREATE, LIST = "eoa:create", "eoa:list"
SIGN_MESSAGE, SIGN_TYPED_DATA, SIGN_TRANSACTION = "eoa:signMessage", "eoa:signTypedData", "eoa:signTransaction"
SIGN_AUTHORIZATION, SIGN_STRUCTURED = "eoa:signAuthorization", "eoa:signStructuredMessage"
OPERATIONS = (CREATE, LIST, SIGN_MESSAGE, SIGN_TYPED_DATA, SIGN_TRANSACTION, SIGN_AUTHORIZATION, SIGN_STRUCTURED)

EOA_MEMBERS = frozenset({"id", "address", "metadata", "createdAt", "updatedAt"})
LIST_MEMBERS = frozenset({"items", "page", "pageSize", "totalRecords"})
AUTHORIZATION_MEMBERS = frozenset({"chainId", "address", "nonce", "yParity", "r", "s"})
_SIGNATURE = re.compile(r"[0-9a-f]{130}")
_RAW_TRANSACTION = re.compile(r"(?:[0-9a-f]{2})+")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_QUANTITY = re.compile(r"0x(?:0|[1-9a-fA-F][0-9a-fA-F]*)")  # JSON-RPC QUANTITY: no leading zeros
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
HALF_N = evm_model.SECP256K1_N // 2

# The transaction destination of EIP-155's own example.
TO = "0x3535353535353535353535353535353535353535"


def _random_address() -> str:
    return evm_model.checksum("0x" + os.urandom(20).hex())


# ---- calls --------------------------------------------------------------------------------------

def _new_account(ctx: Context, name: str) -> dict:
    return expect_success(ctx.client.call("serviceAccount:create", options={"metadata": {"suite": f"eoa/{name}"}}),
                          "serviceAccount:create")


def _call(ctx: Context, operation: str, admin_key: str, options=None):
    return ctx.client.call(operation, auth={"adminKey": admin_key}, options=options)


def _ok(ctx: Context, operation: str, admin_key: str, options, what: str):
    return expect_success(_call(ctx, operation, admin_key, options), f"{operation} ({what})")


def _members(data, members: frozenset, what: str) -> dict:
    require(isinstance(data, dict) and set(data) == members, f"{what}: data must have exactly these members",
            expected=sorted(members), actual=sorted(data) if isinstance(data, dict) else data)
    return data


def _same_address(actual: str, expected: str, what: str) -> None:
    require(isinstance(actual, str) and actual.lower() == expected.lower(), f"{what}: the signer is not the EOA",
            expected=expected, actual=actual)


def _model(what: str, action):
    """Run a decoding or recovery step; its failure is the Vault's."""
    try:
        return action()
    except ModelError as error:
        raise CheckFailed(f"{what}: {error}") from None


def _create_eoa(ctx: Context, admin_key: str, metadata: dict | None = None, what: str = "create") -> dict:
    data = _members(_ok(ctx, CREATE, admin_key, {"metadata": metadata or {}}, what), EOA_MEMBERS, f"eoa:create ({what})")
    address = data["address"]
    require(isinstance(address, str) and _ADDRESS.fullmatch(address), f"{what}: address is not a 0x 20-byte hex address",
            expected="0x + 40 hex digits", actual=address)
    # Mixed case is a checksum (EIP-55); a wrong one makes clients refuse the address.
    if address[2:] not in (address[2:].lower(), address[2:].upper()):
        require(evm_model.checksum(address) == address, f"{what}: address is mixed-case but not EIP-55",
                expected=evm_model.checksum(address), actual=address)
    return data


class _Owner:
    """A fresh service account with one EOA: what most checks need."""

    def __init__(self, ctx: Context, name: str, metadata: dict | None = None):
        self.ctx = ctx
        self.account = _new_account(ctx, name)
        self.admin_key = self.account["adminKey"]
        self.eoa = _create_eoa(ctx, self.admin_key, metadata or {"suite": name})
        self.address = self.eoa["address"]

    def call(self, operation: str, options):
        return _call(self.ctx, operation, self.admin_key, options)

    def ok(self, operation: str, options, what: str):
        return _ok(self.ctx, operation, self.admin_key, options, what)

    def signature(self, operation: str, options, what: str, members=frozenset({"signature"})) -> tuple[bytes, dict]:
        """The call's 65-byte r || s || v, checked for its wire form (spec §12.3)."""
        data = _members(self.ok(operation, options, what), members, f"{operation} ({what})")
        text = data["signature"]
        require(isinstance(text, str) and _SIGNATURE.fullmatch(text) is not None,
                f"{operation} ({what}): signature must be 65 bytes in lowercase hex without 0x",
                expected="130 lowercase hex digits", actual=text)
        signature = bytes.fromhex(text)
        require(signature[64] in (27, 28), f"{operation} ({what}): v must be 27 or 28", expected="27 or 28",
                actual=signature[64])
        return signature, data

    def require_personal(self, message: bytes, signature: bytes, what: str) -> None:
        signer = _model(what, lambda: _recover_personal(message, signature))
        _same_address(signer, self.address, what)


def _recover_personal(message: bytes, signature: bytes) -> str:
    try:
        return evm_model.recover_personal(message, signature)
    except Exception as error:  # eth-account: a signature that does not recover
        raise ModelError(f"eth-account cannot recover the signature: {error}") from None


# ---- 12.1 create and list -------------------------------------------------------------------------

@check("eoa/create", section="12.1", level=Level.MUST,
       requirement="eoa:create MUST answer exactly {id (UUID), address, metadata, createdAt, updatedAt (ISO 8601, "
                   "equal)}, metadata as sent (strings, finite numbers, booleans), address the key's Ethereum address "
                   "(a message it signs recovers to it); each EOA is distinct.")
def create(ctx: Context):
    metadata = {"team": "payments", "n": 3, "ratio": 0.25, "negative": -7, "live": True, "off": False, "empty": "",
                "ünï": "cødé ✓"}
    owner = _Owner(ctx, "create", metadata)
    second = _create_eoa(ctx, owner.admin_key, {}, "second create")
    for data, sent in ((owner.eoa, metadata), (second, {})):
        require(is_uuid(data["id"]), "id is not a UUID", expected="UUID", actual=data["id"])
        require(data["metadata"] == sent and json.dumps(data["metadata"], sort_keys=True) == json.dumps(sent, sort_keys=True),
                "metadata differs from what was sent", expected=sent, actual=data["metadata"])
        for name in ("createdAt", "updatedAt"):
            require(parse_timestamp(data[name]) is not None, f"{name} is not an ISO 8601 date-time (6.6)",
                    expected="YYYY-MM-DDTHH:MM:SS[.fff][Z|±hh:mm]", actual=data[name])
        require(data["createdAt"] == data["updatedAt"], "createdAt and updatedAt differ at creation",
                expected=data["createdAt"], actual=data["updatedAt"])
    for name in ("id", "address"):
        require(owner.eoa[name].lower() != second[name].lower(), f"two EOAs share {name}", expected="distinct",
                actual=owner.eoa[name])
    for data in (owner.eoa, second):
        message = f"eoa/create proves {data['id']}".encode()
        signature, _ = owner.signature(SIGN_MESSAGE, {"from": data["address"], "message": message.decode()},
                                       "proof of the key")
        signer = _model("proof of the key", lambda: _recover_personal(message, signature))
        _same_address(signer, data["address"], f"address of {data['id']}")


def _metadata_cases(address: str):
    for what, metadata in [
        ("a nested object", {"k": {"a": 1}}), ("a list value", {"k": [1]}), ("a null value", {"k": None}),
        ("metadata a list", ["k"]), ("metadata a string", "k"), ("metadata a number", 5),
    ]:
        yield f"metadata {what}", CREATE, {"metadata": metadata}


@check("eoa/metadata-invalid", section="12.1", level=Level.MUST,
       requirement="eoa:create MUST refuse metadata that is not an object of strings, finite numbers and booleans, "
                   "and MUST NOT create an EOA for it.")
def metadata_invalid(ctx: Context):
    owner = _Owner(ctx, "metadata-invalid")
    for what, operation, options in _metadata_cases(owner.address):
        expect_refusal(owner.call(operation, options), what)
    listed = owner.ok(LIST, {}, "after refusals")
    require(listed.get("totalRecords") == 1, "a refused eoa:create stored an EOA", expected=1,
            actual=listed.get("totalRecords"))


def _list_all(ctx: Context, admin_key: str, what: str) -> dict:
    return _members(_ok(ctx, LIST, admin_key, {"pageSize": 100}, what), LIST_MEMBERS, f"eoa:list ({what})")


@check("eoa/list-own", section="12.1", level=Level.MUST,
       requirement="eoa:list MUST return only the caller's EOAs, in creation order, each as eoa:create answered it, "
                   "with totalRecords counting them; an account without EOAs lists none.")
def list_own(ctx: Context):
    first, second = _new_account(ctx, "list-own"), _new_account(ctx, "list-own")
    empty = _new_account(ctx, "list-own")
    made = {first["adminKey"]: [], second["adminKey"]: []}
    for i, admin_key in enumerate([first["adminKey"], second["adminKey"], first["adminKey"], first["adminKey"],
                                   second["adminKey"]]):
        made[admin_key].append(_create_eoa(ctx, admin_key, {"i": i}, f"create #{i}"))
    for admin_key, eoas in made.items():
        listed = _list_all(ctx, admin_key, "every EOA")
        require(listed["items"] == eoas, "eoa:list must show exactly the caller's EOAs, in creation order, as created",
                expected=[e["address"] for e in eoas], actual=[i.get("address") for i in listed["items"]
                                                               if isinstance(i, dict)] or listed["items"])
        require(listed["totalRecords"] == len(eoas) and type(listed["totalRecords"]) is int,
                "totalRecords must count the caller's EOAs", expected=len(eoas), actual=listed["totalRecords"])
    listed = _list_all(ctx, empty["adminKey"], "an account without EOAs")
    require(listed["items"] == [] and listed["totalRecords"] == 0, "an account without EOAs must list none",
            expected={"items": [], "totalRecords": 0}, actual=listed)


@check("eoa/list-pagination", section="12.1", level=Level.MUST,
       requirement="eoa:list pages with page (default 1) and pageSize (default 20): each page holds the next "
                   "pageSize EOAs in creation order, echoes page and pageSize, a page past the end has items [], and "
                   "totalRecords counts all the caller's EOAs.")
def list_pagination(ctx: Context):
    account = _new_account(ctx, "list-pagination")
    admin_key = account["adminKey"]
    eoas = [_create_eoa(ctx, admin_key, {"i": i}, f"create #{i}") for i in range(5)]
    defaults = _members(_ok(ctx, LIST, admin_key, {}, "no options"), LIST_MEMBERS, "eoa:list (no options)")
    require((defaults["page"], defaults["pageSize"]) == (1, 20), "the defaults must be page 1 and pageSize 20",
            expected=(1, 20), actual=(defaults["page"], defaults["pageSize"]))
    require(defaults["items"] == eoas and defaults["totalRecords"] == 5, "the default page must hold all 5 EOAs",
            expected=5, actual=len(defaults["items"]))
    absent = _members(expect_success(ctx.client.call(LIST, auth={"adminKey": admin_key}), "eoa:list without options"),
                      LIST_MEMBERS, "eoa:list without options")
    require(absent == defaults, "absent options must mean {}", expected=defaults, actual=absent)
    for page, size, start in [(1, 2, 0), (2, 2, 2), (3, 2, 4), (4, 2, 5), (2, 3, 3), (1, 5, 0), (7, 20, 5)]:
        options = {"page": page, "pageSize": size}
        if page == 1 and size == 5:
            options = {"pageSize": size}  # page defaults to 1 alone too
        if page == 7:
            options = {"page": page}  # pageSize defaults to 20 alone too
        data = _members(_ok(ctx, LIST, admin_key, options, f"page {page} of {size}"), LIST_MEMBERS,
                        f"eoa:list {options}")
        expected = {"items": eoas[start:start + size], "page": page, "pageSize": size, "totalRecords": 5}
        require(data == expected, f"eoa:list {options} must hold EOAs #{start} to #{min(start + size, 5) - 1}",
                expected={**expected, "items": [e["address"] for e in expected["items"]]},
                actual={**data, "items": [i.get("address") if isinstance(i, dict) else i for i in data["items"]]
                        if isinstance(data["items"], list) else data["items"]})


def _list_cases(address: str):
    for name in ("page", "pageSize"):
        for value in (0, -1, 1.5, "1", True, [1], {"n": 1}):
            yield f"{name} {value!r}", LIST, {name: value}


@check("eoa/list-invalid", section="12.1", level=Level.MUST,
       requirement="eoa:list MUST refuse a page or pageSize that is not a positive integer.")
def list_invalid(ctx: Context):
    owner = _Owner(ctx, "list-invalid")
    for what, operation, options in _list_cases(owner.address):
        expect_refusal(owner.call(operation, options), what)


# ---- 12.2 choosing the key -------------------------------------------------------------------------

def _valid_options(operation: str, address: str) -> dict:
    """A request of each signing operation that the EOA ``address`` may make."""
    return {
        SIGN_MESSAGE: {"from": address, "message": "choose the key"},
        SIGN_TYPED_DATA: {"from": address, "typedData": evm_model.MAIL_TYPED_DATA},
        SIGN_TRANSACTION: {"from": address, "transaction": _TRANSACTIONS["0x02"]},
        SIGN_AUTHORIZATION: {"from": address, "authorization": {"chainId": "0x1", "address": TO, "nonce": 1}},
        SIGN_STRUCTURED: {"from": address, "structuredMessage": {"useropV07": _USER_OP_V07_MINIMAL}, "chainId": 1},
    }[operation]


SIGNING = (SIGN_MESSAGE, SIGN_TYPED_DATA, SIGN_TRANSACTION, SIGN_AUTHORIZATION, SIGN_STRUCTURED)


def _from_cases(address: str):
    bad = [("39 hex digits", address[:-1]), ("41 hex digits", address + "0"), ("a non-hex digit", address[:-1] + "g"),
           ("an inner space", address[:20] + " " + address[21:]), ("a trailing space", address + " "),
           ("0x only", "0x"), ("empty", ""), ("a number", int(address, 16)), ("null", None), ("a list", [address]),
           ("32 bytes", "0x" + "ab" * 32)]
    for operation in SIGNING:
        for what, value in bad:
            yield f"{operation} with from {what}", operation, {**_valid_options(operation, address), "from": value}
        options = dict(_valid_options(operation, address))
        del options["from"]
        yield f"{operation} without from", operation, options


@check("eoa/from-malformed", section="12.2", level=Level.MUST,
       requirement="Every signing operation MUST refuse an options.from that is not a 20-byte hex address.")
def from_malformed(ctx: Context):
    owner = _Owner(ctx, "from-malformed")
    for what, operation, options in _from_cases(owner.address):
        expect_refusal(owner.call(operation, options), what)


@check("eoa/from-any-case", section="12.2", level=Level.MUST,
       requirement="options.from names the key as a 20-byte hex address in any case: lowercase and uppercase digits "
                   "MUST select the same EOA.")
def from_any_case(ctx: Context):
    owner = _Owner(ctx, "from-any-case")
    for form in (owner.address.lower(), "0x" + owner.address[2:].upper()):
        message = f"from {form}"
        signature, _ = owner.signature(SIGN_MESSAGE, {"from": form, "message": message}, message)
        owner.require_personal(message.encode(), signature, message)
        for operation in SIGNING[1:]:
            owner.ok(operation, {**_valid_options(operation, owner.address), "from": form}, message)


def _masked(reply, address: str) -> str:
    """The reply as text, with the address asked for (any case, with or without 0x) masked."""
    return re.sub(re.escape(address[2:]), "<address>", json.dumps(reply, sort_keys=True), flags=re.IGNORECASE)


@check("eoa/foreign-eoa-indistinguishable", section="12.2", level=Level.MUST,
       requirement="A signing operation naming an address that is not one of the caller's EOAs MUST be refused; "
                   "another account's EOA MUST be answered exactly as an EOA that does not exist.")
def foreign_eoa_indistinguishable(ctx: Context):
    owner, other = _Owner(ctx, "foreign-eoa"), _Owner(ctx, "foreign-eoa")
    for operation in SIGNING:
        mine = owner.ok(operation, _valid_options(operation, owner.address), "own EOA")
        require(isinstance(mine, dict), f"{operation}: no data")
        nobody = _random_address()
        answers = {}
        for what, address in (("another account's EOA", other.address), ("an EOA that does not exist", nobody)):
            exchange = owner.call(operation, _valid_options(operation, address))
            expect_refusal(exchange, f"{operation} with {what}")
            answers[what] = _masked(exchange.reply, address)
        require(answers["another account's EOA"] == answers["an EOA that does not exist"],
                f"{operation}: another account's EOA is answered differently from one that does not exist",
                expected=answers["an EOA that does not exist"], actual=answers["another account's EOA"])
        other.ok(operation, _valid_options(operation, other.address), "the other account's own EOA")


# ---- 12.3 messages ----------------------------------------------------------------------------------

_TEXTS = ["hello", "ünïcødé ♥ 𝄞", "", "0xdeadbeef", "line\nbreak\u0000nul", "x" * 300]


@check("eoa/sign-message-text", section="12.3", level=Level.MUST,
       requirement='eoa:signMessage with format "text" (the default) MUST sign the UTF-8 bytes of message as '
                   "EIP-191 personal_sign, answering exactly {signature}: 65 bytes r || s || v, v in {27, 28}, "
                   "lowercase hex without 0x; a chainId is accepted and not signed.")
def sign_message_text(ctx: Context):
    owner = _Owner(ctx, "sign-message-text")
    for text in _TEXTS:
        for extra in ({}, {"format": "text"}, {"chainId": 137}, {"chainId": 0}):
            what = f"text {text[:20]!r} {extra}"
            signature, _ = owner.signature(SIGN_MESSAGE, {"from": owner.address, "message": text, **extra}, what)
            owner.require_personal(text.encode(), signature, what)


_HEX_MESSAGES = ["0xdeadbeef", "0xDEADBEEF", "0x", "0xff00fe", "0x" + "00" * 32, "0x" + bytes(range(256)).hex()]


@check("eoa/sign-message-hex", section="12.3", level=Level.MUST,
       requirement='eoa:signMessage with format "hex" MUST sign the bytes a 0x-prefixed even-length hex string '
                   "stands for (EIP-191 personal_sign), not its text.")
def sign_message_hex(ctx: Context):
    owner = _Owner(ctx, "sign-message-hex")
    for message in _HEX_MESSAGES:
        what = f"hex {message[:20]}"
        signature, _ = owner.signature(SIGN_MESSAGE, {"from": owner.address, "message": message, "format": "hex"}, what)
        owner.require_personal(bytes.fromhex(message[2:]), signature, what)


def _message_cases(address: str):
    base = {"from": address, "message": "hello"}
    for value in ("b64", "TEXT", "Hex", "", 1, None, ["text"]):
        yield f"format {value!r}", SIGN_MESSAGE, {**base, "format": value}
    for value in ("0xabc", "deadbeef", "0xzz", "0x 00", "0x00 ", 5):
        yield f"hex message {value!r}", SIGN_MESSAGE, {**base, "message": value, "format": "hex"}
    for value in (5, None, ["hello"], {"text": "hello"}):
        yield f"message {value!r}", SIGN_MESSAGE, {**base, "message": value}
    for value in (-1, 1.5, "one", True):
        yield f"chainId {value!r}", SIGN_MESSAGE, {**base, "chainId": value}


@check("eoa/sign-message-invalid", section="12.3", level=Level.MUST,
       requirement='eoa:signMessage MUST refuse a format other than "text" or "hex", a hex message that is not '
                   "0x-prefixed even-length hex, a message that is not a string, and a chainId that is not a "
                   "non-negative integer.")
def sign_message_invalid(ctx: Context):
    owner = _Owner(ctx, "sign-message-invalid")
    for what, operation, options in _message_cases(owner.address):
        expect_refusal(owner.call(operation, options), what)


# ---- 12.3 typed data ----------------------------------------------------------------------------------

@check("eoa/sign-typed-data", section="12.3", level=Level.MUST,
       requirement="eoa:signTypedData MUST sign the EIP-712 (eth_signTypedData_v4) digest of typedData, answering "
                   "exactly {signature} as 65-byte r || s || v: the EIP's Mail example, and the same under another "
                   "domain, recover to the EOA.")
def sign_typed_data(ctx: Context):
    mail = evm_model.MAIL_TYPED_DATA
    # The harness's encoder must give EIP-712's published digest before it judges anyone.
    if evm_model.typed_data_digest(mail) != evm_model.MAIL_DIGEST:
        raise RuntimeError("the harness's EIP-712 encoder does not reproduce the EIP's Mail digest")
    owner = _Owner(ctx, "sign-typed-data")
    other_domain = {**mail, "domain": {"name": "Ether Mail", "version": "2", "chainId": 137,
                                       "verifyingContract": "0x" + "ab" * 20}}
    no_domain_fields = {**mail, "domain": {}, "types": {**mail["types"], "EIP712Domain": []}}
    for what, typed in (("EIP-712 Mail example", mail), ("another domain", other_domain),
                        ("an empty domain", no_domain_fields)):
        signature, _ = owner.signature(SIGN_TYPED_DATA, {"from": owner.address, "typedData": typed}, what)
        r, s, v = evm_model.split_rsv(signature)
        digest = evm_model.typed_data_digest(typed)
        _same_address(_model(what, lambda: evm_model.recover(digest, v - 27, r, s)), owner.address, what)


def _typed_data_cases(address: str):
    mail = evm_model.MAIL_TYPED_DATA
    types_without_person = {k: v for k, v in mail["types"].items() if k != "Person"}
    for what, typed in [
        ("a primaryType not in types", {**mail, "primaryType": "Nope"}),
        ("a member of an undefined type", {**mail, "types": types_without_person}),
        ("an address that is not one", {**mail, "message": {**mail["message"], "to": {"name": "Bob", "wallet": "bob"}}}),
        ("a uint256 that is not a number", {**mail, "domain": {**mail["domain"], "chainId": "one"}}),
        ("typedData a string", "Mail"), ("typedData a list", [mail]),
    ]:
        yield f"typed data with {what}", SIGN_TYPED_DATA, {"from": address, "typedData": typed}


@check("eoa/sign-typed-data-invalid", section="12.3", level=Level.MUST,
       requirement="eoa:signTypedData MUST refuse typed data that does not encode under EIP-712.")
def sign_typed_data_invalid(ctx: Context):
    owner = _Owner(ctx, "sign-typed-data-invalid")
    for what, operation, options in _typed_data_cases(owner.address):
        expect_refusal(owner.call(operation, options), what)


# ---- 12.3 transactions ----------------------------------------------------------------------------

_BASE = {"nonce": "0x7", "gasLimit": "0x5208", "value": "0xde0b6b3a7640000", "input": "0xabcdef"}
_FEES = {"maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x3b9aca00"}
_ACCESS = [{"address": "0x" + "11" * 20, "storageKeys": ["0x" + "00" * 31 + "01", "0x" + "ff" * 32]},
           {"address": "0x" + "22" * 20, "storageKeys": []}]
_AUTHORIZATIONS = [
    {"chainId": "0x1", "address": "0x" + "44" * 20, "nonce": "0x5", "yParity": 1, "r": "0x" + "ab" * 32,
     "s": "0x" + "12" * 32},
    {"chainId": "0x0", "address": "0x" + "55" * 20, "nonce": 0, "yParity": 0, "r": "0x1", "s": "0x2"},
]
_BLOB_HASHES = ["0x01" + "22" * 31, "0x01" + "33" * 31]
_TRANSACTIONS = {
    "0x00 EIP-155": {"type": "0x00", **_BASE, "chainId": "0x89", "gasPrice": "0x4a817c800", "to": TO},
    "0x00 without chainId": {"type": "0x00", **_BASE, "gasPrice": "0x4a817c800", "to": TO},
    "0x00 contract creation": {"type": "0x00", **_BASE, "chainId": "0x1", "gasPrice": "0x1", "to": None},
    "0x00 quantity forms": {"type": "0x00", "nonce": 9, "gasLimit": "21000", "value": "1000000", "input": "0x",
                            "chainId": 1, "gasPrice": "0x0", "to": TO},
    "0x00 64-bit maxima": {"type": "0x00", **_BASE, "nonce": hex(evm_model.U64_MAX), "gasLimit": hex(evm_model.U64_MAX),
                           "chainId": hex(evm_model.U64_MAX), "value": hex(2**256 - 1), "gasPrice": "0x1", "to": TO},
    "0x01": {"type": "0x01", **_BASE, "chainId": "0x1", "gasPrice": "0x3b9aca00", "to": TO, "accessList": _ACCESS},
    "0x01 contract creation": {"type": "0x01", **_BASE, "chainId": "0xa", "gasPrice": "0x1", "to": None,
                               "accessList": []},
    "0x02": {"type": "0x02", **_BASE, **_FEES, "chainId": "0x2105", "to": TO, "accessList": _ACCESS},
    "0x02 contract creation": {"type": "0x02", **_BASE, **_FEES, "chainId": "0x1", "to": None, "accessList": []},
    "0x03": {"type": "0x03", **_BASE, **_FEES, "chainId": "0x1", "to": TO, "accessList": _ACCESS,
             "blobVersionedHashes": _BLOB_HASHES, "maxFeePerBlobGas": "0x3"},
    "0x04": {"type": "0x04", **_BASE, **_FEES, "chainId": "0x1", "to": TO, "accessList": _ACCESS,
             "authorizationList": _AUTHORIZATIONS},
    "0x05 (the client's 7702 type)": {"type": "0x05", **_BASE, **_FEES, "chainId": "0x2105", "to": TO,
                                      "accessList": [], "authorizationList": _AUTHORIZATIONS[:1]},
}

# The type byte each request must be encoded with (spec §12.3: 7702 is always 0x04).
_ENCODED_TYPE = {"0x00": 0, "0x01": 1, "0x02": 2, "0x03": 3, "0x04": 4, "0x05": 4}


def _require_transaction(owner: _Owner, what: str, tx: dict) -> None:
    """Sign ``tx``; decode the answer independently; every field and the sender must be as asked."""
    data = _members(owner.ok(SIGN_TRANSACTION, {"from": owner.address, "transaction": tx}, what),
                    frozenset({"signature"}), f"eoa:signTransaction ({what})")
    text = data["signature"]
    require(isinstance(text, str) and _RAW_TRANSACTION.fullmatch(text) is not None,
            f"{what}: the signed transaction must be lowercase hex without 0x", expected="lowercase hex", actual=text)
    raw = bytes.fromhex(text)
    decoded = _model(what, lambda: evm_model.decode_transaction(raw))
    require(decoded.type == _ENCODED_TYPE[tx["type"]], f"{what}: encoded with the wrong transaction type",
            expected=_ENCODED_TYPE[tx["type"]], actual=decoded.type)
    expected = evm_model.expected_fields(tx)
    for name, value in expected.items():
        require(decoded.fields[name] == value, f"{what}: field {name} differs from the request",
                expected=_show(value), actual=_show(decoded.fields[name]))
    chain_id = evm_model.quantity(tx["chainId"]) if "chainId" in tx else None
    require(decoded.chain_id == chain_id, f"{what}: the signature commits to the wrong chain "
                                          "(EIP-155 for legacy, the chainId field for typed)",
            expected=chain_id, actual=decoded.chain_id)
    if decoded.type == 0 and chain_id is None:
        require(decoded.v in (27, 28), f"{what}: v must be 27 or 28 without chainId", expected="27 or 28", actual=decoded.v)
    # EIP-2: a high s is invalid on chain, so the transaction would not be ready for eth_sendRawTransaction.
    require(decoded.s <= HALF_N, f"{what}: s is above secp256k1n/2 (EIP-2)", expected="s <= n/2", actual=hex(decoded.s))
    _same_address(_model(what, lambda: decoded.sender), owner.address, f"{what} (sender by eth-keys)")
    try:
        by_eth_account = evm_model.eth_account().Account.recover_transaction(raw)
    except Exception as error:  # eth-account refuses what it cannot decode: the Vault's fault
        raise CheckFailed(f"{what}: eth-account cannot recover the transaction's sender: {error}") from None
    _same_address(by_eth_account, owner.address, f"{what} (sender by eth-account)")


def _show(value):
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return [_show(v) for v in value]
    return value


def _transactions_check(ctx: Context, name: str, prefixes: tuple[str, ...]) -> None:
    owner = _Owner(ctx, name)
    for what, tx in _TRANSACTIONS.items():
        if what.startswith(prefixes):
            _require_transaction(owner, what, tx)


@check("eoa/sign-transaction-legacy", section="12.3", level=Level.MUST,
       requirement="eoa:signTransaction of type 0x00 MUST answer the signed RLP transaction with every field as asked "
                   "and the EOA as sender: EIP-155 (v = chainId * 2 + 35 + yParity) with chainId, v in {27, 28} "
                   "without; to: null creates a contract; quantities in hex, decimal strings or integers, nonce, "
                   "gasLimit and chainId up to 2^64 - 1.")
def sign_transaction_legacy(ctx: Context):
    _transactions_check(ctx, "sign-transaction-legacy", ("0x00",))


@check("eoa/sign-transaction-typed", section="12.3", level=Level.MUST,
       requirement="eoa:signTransaction of types 0x01 (EIP-2930) and 0x02 (EIP-1559) MUST answer type || RLP "
                   "(EIP-2718) with every field as asked, the access list included, and the EOA as sender; to: null "
                   "creates a contract.")
def sign_transaction_typed(ctx: Context):
    _transactions_check(ctx, "sign-transaction-typed", ("0x01", "0x02"))


@check("eoa/sign-transaction-blob", section="12.3", level=Level.MUST,
       requirement="eoa:signTransaction of type 0x03 (EIP-4844) MUST answer 0x03 || RLP with every field as asked, "
                   "blobVersionedHashes and maxFeePerBlobGas included, and the EOA as sender.")
def sign_transaction_blob(ctx: Context):
    _transactions_check(ctx, "sign-transaction-blob", ("0x03",))


@check("eoa/sign-transaction-7702", section="12.3", level=Level.MUST,
       requirement="eoa:signTransaction MUST accept EIP-7702 transactions as type 0x04 and as 0x05 (the client's) and "
                   "MUST encode both as 0x04 || RLP, every field and authorization tuple as asked, the EOA as sender.")
def sign_transaction_7702(ctx: Context):
    _transactions_check(ctx, "sign-transaction-7702", ("0x04", "0x05"))


def _without(tx: dict, name: str) -> dict:
    return {k: v for k, v in tx.items() if k != name}


def _transaction_cases(address: str):
    t = _TRANSACTIONS
    cases = [
        ("type 0x06", {**t["0x02"], "type": "0x06"}), ("type 0x7e", {**t["0x02"], "type": "0x7e"}),
        ("type missing", _without(t["0x02"], "type")), ("type 2 as a number", {**t["0x02"], "type": 2}),
        ("0x03 with to: null", {**t["0x03"], "to": None}), ("0x04 with to: null", {**t["0x04"], "to": None}),
        ("0x05 with to: null", {**t["0x05 (the client's 7702 type)"], "to": None}),
        ("0x01 without chainId", _without(t["0x01"], "chainId")),
        ("0x02 without chainId", _without(t["0x02"], "chainId")),
        ("0x02 without gasLimit", _without(t["0x02"], "gasLimit")),
        ("0x02 without maxFeePerGas", _without(t["0x02"], "maxFeePerGas")),
        ("0x00 without gasPrice", _without(t["0x00 EIP-155"], "gasPrice")),
        ("0x03 without blobVersionedHashes", _without(t["0x03"], "blobVersionedHashes")),
        ("0x03 with no blobVersionedHashes", {**t["0x03"], "blobVersionedHashes": []}),
        ("0x03 with a 31-byte blob hash", {**t["0x03"], "blobVersionedHashes": ["0x01" + "22" * 30]}),
        ("0x03 without maxFeePerBlobGas", _without(t["0x03"], "maxFeePerBlobGas")),
        ("0x04 without authorizationList", _without(t["0x04"], "authorizationList")),
        ("0x04 with an empty authorizationList", {**t["0x04"], "authorizationList": []}),
        ("nonce 2^64", {**t["0x02"], "nonce": hex(2**64)}), ("gasLimit 2^64", {**t["0x02"], "gasLimit": hex(2**64)}),
        ("chainId 2^64", {**t["0x02"], "chainId": hex(2**64)}),
        ("legacy chainId 2^64", {**t["0x00 EIP-155"], "chainId": hex(2**64)}),
        ("decimal nonce 2^64", {**t["0x02"], "nonce": str(2**64)}),
        ("value 2^256", {**t["0x02"], "value": hex(2**256)}),
        ("maxFeePerGas 2^256", {**t["0x02"], "maxFeePerGas": hex(2**256)}),
        ("a negative nonce", {**t["0x02"], "nonce": -1}), ("a non-hex value", {**t["0x02"], "value": "0xzz"}),
        ("a boolean nonce", {**t["0x02"], "nonce": True}), ("a fractional gasLimit", {**t["0x02"], "gasLimit": 21000.5}),
        ("odd-length input", {**t["0x02"], "input": "0xabc"}), ("input without 0x", {**t["0x02"], "input": "abcd"}),
        ("a malformed to", {**t["0x02"], "to": "0x1234"}),
        ("a 31-byte storage key", {**t["0x02"], "accessList": [{"address": TO, "storageKeys": ["0x" + "00" * 31]}]}),
        ("an access-list entry without a valid address", {**t["0x02"], "accessList": [{"address": "0x12", "storageKeys": []}]}),
        ("an accessList that is not a list", {**t["0x02"], "accessList": {"address": TO}}),
        ("transaction a string", "0x02"),
        # Missing is not a default: a 0x02 without `to` must not be signed as a contract creation.
        *[(f"0x02 without {name}", _without(t["0x02"], name)) for name in ("to", "nonce", "value", "input", "accessList")],
        ("0x00 without to", _without(t["0x00 EIP-155"], "to")),
    ]
    for name in ("chainId", "address", "nonce", "yParity", "r", "s"):
        cases.append((f"an authorization without {name}",
                      {**t["0x04"], "authorizationList": [_without(_AUTHORIZATIONS[0], name)]}))
    cases.append(("an authorization with yParity 2", {**t["0x04"], "authorizationList": [{**_AUTHORIZATIONS[0], "yParity": 2}]}))
    cases.append(("an authorization nonce of 2^64",
                  {**t["0x04"], "authorizationList": [{**_AUTHORIZATIONS[0], "nonce": hex(2**64)}]}))
    for what, tx in cases:
        yield f"transaction with {what}", SIGN_TRANSACTION, {"from": address, "transaction": tx}


@check("eoa/sign-transaction-invalid", section="12.3", level=Level.MUST,
       requirement="eoa:signTransaction MUST refuse any other type, a missing field, a malformed value, a nonce, "
                   "gasLimit or chainId over 64 bits (other quantities over 256), to: null for 0x03 and 7702, and a "
                   "7702 authorizationList that is empty or whose entries lack chainId, address, nonce, yParity (0 or "
                   "1), r or s.")
def sign_transaction_invalid(ctx: Context):
    owner = _Owner(ctx, "sign-transaction-invalid")
    for what, operation, options in _transaction_cases(owner.address):
        expect_refusal(owner.call(operation, options), what)


@check("eoa/blob-sidecar-refused", section="12.3", level=Level.INFO,
       requirement="Observed: whether a 0x03 transaction carrying a sidecar (blobs, commitments, proofs) is refused, "
                   "as the reference does (a sidecar is not signed; the caller attaches it).")
def blob_sidecarexpect_refusal(ctx: Context):
    owner = _Owner(ctx, "blob-sidecar-refused")
    answers = {}
    for name in ("blobs", "commitments", "proofs"):
        tx = {**_TRANSACTIONS["0x03"], name: ["0x" + "00" * 48]}
        exchange = owner.call(SIGN_TRANSACTION, {"from": owner.address, "transaction": tx})
        answers[name] = "accepted" if exchange.ok else f"refused ({exchange.error_code})"
    raise Observation(f"0x03 with a sidecar member: {answers}")


# ---- 12.3 EIP-7702 authorizations ----------------------------------------------------------------

_AUTHORIZATION_REQUESTS = [
    {"chainId": "0x1", "address": TO, "nonce": 5},
    {"chainId": "137", "address": "0x" + "ab" * 20, "nonce": "0x0"},
    {"chainId": "0x0", "address": evm_model.checksum("0x" + "cd" * 20), "nonce": "18446744073709551615"},
    {"chainId": 8453, "address": "0x" + "EF" * 20, "nonce": 42},
]


@check("eoa/sign-authorization", section="12.3", level=Level.MUST,
       requirement="eoa:signAuthorization MUST sign keccak256(0x05 || rlp([chainId, address, nonce])) (EIP-7702) and "
                   "answer exactly {signedAuthorization: {chainId, address, nonce, yParity, r, s}}: chainId and "
                   "address as sent, nonce and yParity JSON numbers, r and s 0x hex quantities, recovering to the EOA.")
def sign_authorization(ctx: Context):
    owner = _Owner(ctx, "sign-authorization")
    for sent in _AUTHORIZATION_REQUESTS:
        what = f"authorization {sent}"
        data = _members(owner.ok(SIGN_AUTHORIZATION, {"from": owner.address, "authorization": sent}, what),
                        frozenset({"signedAuthorization"}), f"eoa:signAuthorization ({what})")
        signed = _members(data["signedAuthorization"], AUTHORIZATION_MEMBERS, f"{what}: signedAuthorization")
        for name in ("chainId", "address"):
            require(type(signed[name]) is type(sent[name]) and signed[name] == sent[name],
                    f"{what}: {name} must be as sent", expected=sent[name], actual=signed[name])
        nonce = evm_model.quantity(sent["nonce"])
        require(type(signed["nonce"]) is int and signed["nonce"] == nonce, f"{what}: nonce must be the JSON number sent",
                expected=nonce, actual=repr(signed["nonce"]))
        require(type(signed["yParity"]) is int and signed["yParity"] in (0, 1), f"{what}: yParity must be the number 0 or 1",
                expected="0 or 1", actual=signed["yParity"])
        for name in ("r", "s"):
            require(isinstance(signed[name], str) and _QUANTITY.fullmatch(signed[name]) is not None,
                    f"{what}: {name} must be a 0x hex quantity", expected="0x hex, no leading zeros", actual=signed[name])
        r, s = int(signed["r"], 16), int(signed["s"], 16)
        # EIP-7702 refuses an authorization with s > secp256k1n / 2.
        require(s <= HALF_N, f"{what}: s is above secp256k1n/2, which EIP-7702 refuses", expected="s <= n/2",
                actual=signed["s"])
        digest = evm_model.authorization_digest(evm_model.quantity(sent["chainId"]), sent["address"], nonce)
        _same_address(_model(what, lambda: evm_model.recover(digest, signed["yParity"], r, s)), owner.address, what)


def _authorization_cases(address: str):
    good = _AUTHORIZATION_REQUESTS[0]
    for what, authorization in [
        ("nonce 2^64", {**good, "nonce": 2**64}), ("a negative nonce", {**good, "nonce": -1}),
        ("no nonce", _without(good, "nonce")), ("no chainId", _without(good, "chainId")),
        ("no address", _without(good, "address")), ("a malformed address", {**good, "address": "0x1234"}),
        ("a non-hex chainId", {**good, "chainId": "0xzz"}), ("chainId 2^256", {**good, "chainId": hex(2**256)}),
        ("authorization a list", [good]), ("authorization missing", None),
    ]:
        options = {"from": address, "authorization": authorization}
        if authorization is None:
            del options["authorization"]
        yield f"authorization with {what}", SIGN_AUTHORIZATION, options


@check("eoa/sign-authorization-invalid", section="12.3", level=Level.MUST,
       requirement="eoa:signAuthorization MUST refuse a missing or malformed chainId, address or nonce, and a nonce "
                   "over 64 bits.")
def sign_authorization_invalid(ctx: Context):
    owner = _Owner(ctx, "sign-authorization-invalid")
    for what, operation, options in _authorization_cases(owner.address):
        expect_refusal(owner.call(operation, options), what)


# ---- 12.3 ERC-4337 user operations -------------------------------------------------------------

_SENDER = evm_model.checksum("0x" + "5a" * 20)
_USER_OP_V06 = {
    "sender": _SENDER, "nonce": "0x1f", "initCode": "0x" + "9406cc6185a346906296840746125a0e44976454" + "5fbfb9cf" + "00" * 32,
    "callData": "0xb61d27f6" + "00" * 96, "callGasLimit": "0x30d40", "verificationGasLimit": "0x186a0",
    "preVerificationGas": "0xc350", "maxFeePerGas": "0x59682f00", "maxPriorityFeePerGas": "0x3b9aca00",
    "paymasterAndData": "0x" + "77" * 20 + "0102", "signature": "0x" + "ff" * 65,
}
_USER_OP_V06_MINIMAL = {k: v for k, v in _USER_OP_V06.items() if k not in ("initCode", "paymasterAndData", "signature")}
_USER_OP_V07 = {
    "sender": _SENDER, "nonce": "0x" + "01" * 24 + "00" * 8, "factory": "0x" + "91" * 20, "factoryData": "0xdeadbeef",
    "callData": "0xb61d27f6" + "00" * 64, "callGasLimit": "0x30d40", "verificationGasLimit": "0x186a0",
    "preVerificationGas": "0xc350", "maxFeePerGas": "0x59682f00", "maxPriorityFeePerGas": "0x3b9aca00",
    "paymaster": "0x" + "93" * 20, "paymasterVerificationGasLimit": "0x249f0", "paymasterPostOpGasLimit": "0xc350",
    "paymasterData": "0xcafe", "signature": "0x" + "ee" * 65,
}
_USER_OP_V07_MINIMAL = {"sender": _SENDER, "nonce": "0x0", "callData": "0x", "callGasLimit": "0x1",
                        "verificationGasLimit": "0x2", "preVerificationGas": "0x3", "maxFeePerGas": "0x4",
                        "maxPriorityFeePerGas": "0x5"}


def _user_op_check(ctx: Context, name: str, kind: str, ops: list[tuple[str, dict]], hasher) -> None:
    owner = _Owner(ctx, name)
    for what, op in ops:
        for chain_id in (1, 137, 11155111):
            label = f"{kind} {what} on chain {chain_id}"
            signature, data = owner.signature(
                SIGN_STRUCTURED, {"from": owner.address, "structuredMessage": {kind: op}, "chainId": chain_id}, label,
                members=frozenset({"signature", "message"}))
            expected = hasher(op, chain_id)
            message = data["message"]
            require(isinstance(message, str) and _HASH.fullmatch(message) is not None,
                    f"{label}: message must be the 0x hex user-operation hash", expected="0x + 64 hex digits",
                    actual=message)
            require(bytes.fromhex(message[2:]) == expected, f"{label}: message is not EntryPoint.getUserOpHash",
                    expected="0x" + expected.hex(), actual=message)
            # Spec 12.3: the EIP-191 (0x45) signature of the hash's 32 bytes (toEthSignedMessageHash).
            owner.require_personal(expected, signature, label)


@check("eoa/sign-user-op-v06", section="12.3", level=Level.MUST,
       requirement="eoa:signStructuredMessage of a useropV06 MUST answer exactly {signature, message}: message the "
                   "v0.6 EntryPoint.getUserOpHash for options.chainId and the entrypoint (default "
                   "0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789), signature its EIP-191 signature by the EOA; the "
                   "input's signature is not hashed.")
def sign_user_op_v06(ctx: Context):
    ops = [("with every field", _USER_OP_V06), ("without optional fields", _USER_OP_V06_MINIMAL),
           ("with another entrypoint", {**_USER_OP_V06, "entrypoint": "0x" + "e0" * 20}),
           ("with another signature", {**_USER_OP_V06, "signature": "0x01"})]
    _user_op_check(ctx, "sign-user-op-v06", "useropV06", ops, evm_model.user_op_hash_v06)


@check("eoa/sign-user-op-v07", section="12.3", level=Level.MUST,
       requirement="eoa:signStructuredMessage of a useropV07 MUST answer exactly {signature, message}: message the "
                   "v0.7 EntryPoint.getUserOpHash of the fields packed as PackedUserOperation (initCode, "
                   "accountGasLimits, gasFees, paymasterAndData) for options.chainId and the entrypoint (default "
                   "0x0000000071727De22E5E9d8BAf0edAc6f37da032), signature its EIP-191 signature by the EOA.")
def sign_user_op_v07(ctx: Context):
    ops = [("with factory and paymaster", _USER_OP_V07), ("without factory or paymaster", _USER_OP_V07_MINIMAL),
           ("with another entrypoint", {**_USER_OP_V07, "entrypoint": "0x" + "e1" * 20}),
           ("with 128-bit maxima", {**_USER_OP_V07_MINIMAL, "callGasLimit": hex(evm_model.U128_MAX),
                                    "maxFeePerGas": hex(evm_model.U128_MAX), "paymaster": "0x" + "94" * 20,
                                    "paymasterPostOpGasLimit": hex(evm_model.U128_MAX)})]
    _user_op_check(ctx, "sign-user-op-v07", "useropV07", ops, evm_model.user_op_hash_v07)


def _user_op_cases(address: str):
    def structured(kind, op, **extra):
        return {"from": address, "structuredMessage": {kind: op}, **extra}

    yield "useropV06 without chainId", SIGN_STRUCTURED, structured("useropV06", _USER_OP_V06)
    yield "useropV07 without chainId", SIGN_STRUCTURED, structured("useropV07", _USER_OP_V07)
    for name in ("callGasLimit", "verificationGasLimit", "maxFeePerGas", "maxPriorityFeePerGas",
                 "paymasterVerificationGasLimit", "paymasterPostOpGasLimit"):
        yield (f"useropV07 with {name} 2^128", SIGN_STRUCTURED,
               structured("useropV07", {**_USER_OP_V07, name: hex(2**128)}, chainId=1))
    yield "both versions at once", SIGN_STRUCTURED, {"from": address, "chainId": 1, "structuredMessage": {
        "useropV06": _USER_OP_V06, "useropV07": _USER_OP_V07}}
    yield "an unknown version", SIGN_STRUCTURED, structured("useropV08", _USER_OP_V07, chainId=1)
    yield "useropV06 without sender", SIGN_STRUCTURED, structured("useropV06", _without(_USER_OP_V06, "sender"), chainId=1)
    yield "useropV06 with odd-length callData", SIGN_STRUCTURED, structured(
        "useropV06", {**_USER_OP_V06, "callData": "0xabc"}, chainId=1)


@check("eoa/sign-user-op-invalid", section="12.3", level=Level.MUST,
       requirement="eoa:signStructuredMessage MUST refuse a request without chainId, a v0.7 128-bit field that does "
                   "not fit 128 bits, and a structuredMessage that is not one useropV06 or useropV07 of valid fields.")
def sign_user_op_invalid(ctx: Context):
    owner = _Owner(ctx, "sign-user-op-invalid")
    for what, operation, options in _user_op_cases(owner.address):
        expect_refusal(owner.call(operation, options), what)


# ---- 12.4 authentication and error codes -------------------------------------------------------------

def _operation_options(operation: str, address: str) -> dict:
    if operation == CREATE:
        return {"metadata": {}}
    if operation == LIST:
        return {}
    return _valid_options(operation, address)


@check("eoa/auth", section="12.4", level=Level.MUST,
       requirement="Every EOA operation MUST refuse a missing auth, an unknown admin key and a rotation code with an "
                   "encrypted error; after a rotation the new admin key, not the old, reaches the account's EOAs.")
def auth(ctx: Context):
    owner = _Owner(ctx, "auth")
    for operation in OPERATIONS:
        options = _operation_options(operation, owner.address)
        for what, credential in _bad_credentials(owner):
            expect_refusal(ctx.client.call(operation, auth=credential, options=options), f"{operation} with {what}")
    rotated = expect_success(ctx.client.call("serviceAccount:rotate", auth={"rotationCode": owner.account["rotationCode"]}),
                             "serviceAccount:rotate")
    for operation in (LIST, SIGN_MESSAGE):
        expect_refusal(_call(ctx, operation, owner.admin_key, _operation_options(operation, owner.address)),
                 f"{operation} with the admin key rotated away")
    owner.admin_key = rotated["newAdminKey"]
    listed = _list_all(ctx, owner.admin_key, "after rotation")
    require(listed["items"] == [owner.eoa], "after rotation the account's EOAs must be listed as before",
            expected=[owner.address], actual=listed["items"])
    signature, _ = owner.signature(SIGN_MESSAGE, {"from": owner.address, "message": "after rotation"}, "after rotation")
    owner.require_personal(b"after rotation", signature, "after rotation")


def _bad_credentials(owner: _Owner):
    return [("no auth", None), ("an empty auth", {}), ("an unknown admin key", {"adminKey": "sa_adm_" + "0" * 64}),
            ("an admin key that is not a string", {"adminKey": 7}),
            ("the rotation code as adminKey", {"adminKey": owner.account["rotationCode"]}),
            ("a rotationCode", {"rotationCode": owner.account["rotationCode"]})]


_AUTH_CODES = {"no auth": "auth_missing", "an empty auth": "auth_missing", "an unknown admin key": "auth_invalid_admin_key",
               "an admin key that is not a string": "auth_invalid_admin_key",
               "the rotation code as adminKey": "auth_invalid_admin_key", "a rotationCode": "auth_unsupported_method"}
_INVALID_CASES = (_metadata_cases, _list_cases, _from_cases, _message_cases, _typed_data_cases, _transaction_cases,
                  _authorization_cases, _user_op_cases)


@check("eoa/error-codes", section="12.4", level=Level.SHOULD,
       requirement="EOA refusals SHOULD carry the codes of 12.4: invalid_input for a malformed option, not_found for "
                   "an address that is not the caller's EOA, auth_missing and auth_invalid_admin_key as 6.2.")
def error_codes(ctx: Context):
    owner, other = _Owner(ctx, "error-codes"), _Owner(ctx, "error-codes")
    wrong = []

    def expect(exchange, what, code):
        actual = expect_refusal(exchange, what)
        if actual != code:
            wrong.append(f"{what}: {actual}")

    for cases in _INVALID_CASES:
        for what, operation, options in cases(owner.address):
            expect(owner.call(operation, options), what, "invalid_input")
    for operation in SIGNING:
        expect(owner.call(operation, _valid_options(operation, other.address)), f"{operation} with another's EOA",
               "not_found")
        expect(owner.call(operation, _valid_options(operation, _random_address())), f"{operation} with no such EOA",
               "not_found")
    for operation in OPERATIONS:
        for what, credential in _bad_credentials(owner):
            expect(ctx.client.call(operation, auth=credential, options=_operation_options(operation, owner.address)),
                   f"{operation} with {what}", _AUTH_CODES[what])
    require(not wrong, f"{len(wrong)} refusals carry another code than 12.4 names", expected="the codes of 12.4",
            actual=wrong[:10])



# ---- 12: the private key never leaves the enclave ----------------------------------------------------

_HEX_RUN = re.compile(r"[0-9a-fA-F]{64,}")


def _opened(answer):
    """What the harness could read of one answer: the decrypted reply, or an unencrypted body."""
    if answer.reply is not None:
        return answer.reply, answer.reply.get("success") is not True if isinstance(answer.reply, dict) else True
    if answer.unencrypted_error is not None:
        return answer.unencrypted_error, True
    return None, False


def _eoa_addresses(answers) -> set[str]:
    """Every EOA address the run's replies named: create answers and list items."""
    addresses = set()
    for answer in answers:
        reply = answer.reply
        if not (isinstance(reply, dict) and reply.get("success") is True and answer.request_plaintext):
            continue
        try:
            operation = json.loads(answer.request_plaintext).get("operation")
        except (ValueError, AttributeError):
            continue
        data = reply.get("data")
        items = [data] if operation == CREATE else (data or {}).get("items", []) if operation == LIST else []
        addresses |= {item["address"].lower() for item in items if isinstance(item, dict)
                      and isinstance(item.get("address"), str)}
    return addresses


def _key_candidates(answers):
    """32-byte hex strings that could be a key: every run of exactly 64 hex digits, and in errors
    every 64-digit window of a longer run (an error has no reason to carry long hex at all)."""
    seen = set()
    for answer in answers:
        opened, is_error = _opened(answer)
        if opened is None:
            continue
        for run in _HEX_RUN.findall(json.dumps(opened)):
            windows = [run] if len(run) == 64 else [run[i:i + 64] for i in range(len(run) - 63)] if is_error else []
            for window in windows:
                if window.lower() not in seen:
                    seen.add(window.lower())
                    yield window.lower()


@check("eoa/no-private-key", section="12.1", level=Level.MUST, tags=("final",),
       requirement="An EOA's private key never leaves the enclave (section 12's opening, 12.1): no answer of the run, "
                   "success or error, MAY carry the private key of any EOA it created.")
def no_private_key(ctx: Context):
    owner = _Owner(ctx, "no-private-key")  # so that even a run of this check alone has EOAs and errors to scan
    for operation in SIGNING:
        owner.ok(operation, _valid_options(operation, owner.address), "no-private-key")
    for cases in (_message_cases, _transaction_cases, _authorization_cases):
        for _, operation, options in list(cases(owner.address))[:4]:
            owner.call(operation, options)
    owner.ok(LIST, {}, "no-private-key")
    addresses = _eoa_addresses(ctx.client.answers)
    for candidate in _key_candidates(ctx.client.answers):
        number = int(candidate, 16)
        if not 0 < number < evm_model.SECP256K1_N:
            continue
        if evm_model.address_of_key(bytes.fromhex(candidate)).lower() in addresses:
            raise CheckFailed("an answer carries the private key of an EOA", expected="no private key in any answer",
                              actual=f"the key of {evm_model.address_of_key(bytes.fromhex(candidate))}")
