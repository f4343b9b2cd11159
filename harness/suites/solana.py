"""Solana accounts and signing (spec §14): create, list, choosing the key, messages, transactions,
and the transaction policies of access tokens.

Independent of any Vault's code: transactions are built and parsed back with ``solders`` (the
Solana SDK's types), and every signature is verified with OpenSSL's ed25519 (pyca/cryptography)
over the exact bytes a Solana signer signs; the reference signs with libsodium.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ._util import expect_refusal, expect_success, is_iso8601, require
from .registry import CheckFailed, CheckUnimplemented, Context, Level, check

CREATE, LIST, SIGN_MESSAGE, SIGN_TRANSACTION = "solana:create", "solana:list", "solana:signMessage", "solana:signTransaction"
ACCOUNT_MEMBERS = frozenset({"pubkey", "metadata", "createdAt", "updatedAt"})
LIST_MEMBERS = frozenset({"items", "totalCount", "page", "pageSize"})
FUTURE = "2999-01-01T00:00:00Z"
SYSTEM_PROGRAM = "11111111111111111111111111111111"
MEMO_PROGRAM = "MemoSq4gqABAXKHr9SsV2YZ4Ua4XFYanWkkQdBKYTY1"


# ---- building and reading transactions (solders) ------------------------------------------------

def _pubkey(text: str):
    from solders.pubkey import Pubkey

    return Pubkey.from_string(text)


def _fresh_key() -> str:
    from solders.keypair import Keypair

    return str(Keypair().pubkey())


def _transaction(payer: str, source: str, to: str, *, version: str = "legacy", memo_signer: str | None = None,
                 lookup: list[str] = ()) -> str:
    """A transfer from ``source`` to ``to`` paid by ``payer``, optionally with a memo that
    ``memo_signer`` must sign; v0 may load ``lookup`` accounts from an address lookup table."""
    from solders.address_lookup_table_account import AddressLookupTableAccount
    from solders.hash import Hash
    from solders.instruction import AccountMeta, Instruction
    from solders.message import Message, MessageV0
    from solders.signature import Signature
    from solders.system_program import TransferParams, transfer
    from solders.transaction import Transaction, VersionedTransaction

    instructions = [transfer(TransferParams(from_pubkey=_pubkey(source), to_pubkey=_pubkey(to), lamports=5))]
    if memo_signer:
        instructions.append(Instruction(_pubkey(MEMO_PROGRAM), b"conformance",
                                        [AccountMeta(_pubkey(memo_signer), is_signer=True, is_writable=False)]))
    blockhash = Hash.from_bytes(os.urandom(32))
    if version == "legacy":
        raw = bytes(Transaction.new_unsigned(Message.new_with_blockhash(instructions, _pubkey(payer), blockhash)))
    else:
        tables = [AddressLookupTableAccount(key=_pubkey(_fresh_key()), addresses=[_pubkey(a) for a in lookup])] \
            if lookup else []
        message = MessageV0.try_compile(_pubkey(payer), instructions, tables, blockhash)
        raw = bytes(VersionedTransaction.populate(message, [Signature.default()] * message.header.num_required_signatures))
    return base64.b64encode(raw).decode()


def _message_bytes(transaction_b64: str) -> bytes:
    from solders.message import to_bytes_versioned
    from solders.transaction import VersionedTransaction

    return bytes(to_bytes_versioned(VersionedTransaction.from_bytes(base64.b64decode(transaction_b64)).message))


def _signature_bytes(value, what: str) -> bytes:
    from solders.signature import Signature

    try:
        signature = Signature.from_string(value)
    except (TypeError, ValueError):
        raise CheckFailed(f"{what}: signature is not base58 of 64 bytes", expected="base58 signature",
                          actual=value) from None
    require(str(signature) == value, f"{what}: signature not in canonical base58", expected=str(signature), actual=value)
    return bytes(signature)


def _verify(pubkey: str, signature_b58, message: bytes, what: str) -> None:
    signature = _signature_bytes(signature_b58, what)
    try:
        Ed25519PublicKey.from_public_bytes(bytes(_pubkey(pubkey))).verify(signature, message)
    except InvalidSignature:
        raise CheckFailed(f"{what}: the signature does not verify for {pubkey} over the expected bytes",
                          expected=message.hex()[:120], actual=signature_b58) from None


# ---- calls --------------------------------------------------------------------------------------

def _account(ctx: Context, name: str) -> str:
    data = expect_success(ctx.client.call("serviceAccount:create", options={"metadata": {"suite": f"solana/{name}"}}),
                          "serviceAccount:create")
    return data["adminKey"]


def _ok(ctx: Context, operation: str, auth: dict, options, what: str):
    exchange = ctx.client.call(operation, auth=auth, options=options)
    return expect_success(exchange, f"{operation} ({what})")


def _create(ctx: Context, admin_key: str, metadata: dict | None = None) -> dict:
    data = _ok(ctx, CREATE, {"adminKey": admin_key}, {"metadata": metadata or {}}, "create")
    require(isinstance(data, dict) and set(data) == ACCOUNT_MEMBERS, "solana:create: data must have exactly "
            "pubkey, metadata, createdAt, updatedAt", expected=sorted(ACCOUNT_MEMBERS), actual=data)
    return data


def _token(ctx: Context, admin_key: str, components: list) -> str:
    data = _ok(ctx, "accessToken:create", {"adminKey": admin_key},
               {"policies": components, "expiresAt": FUTURE, "metadata": {}}, f"token {components}")
    return data["accessToken"]


# ---- checks -------------------------------------------------------------------------------------

@check("solana/create", section="14.1", level=Level.MUST,
       requirement="solana:create MUST answer {pubkey, metadata, createdAt, updatedAt}: a canonical base58 32-byte "
                   "key made in the enclave, the metadata as sent, ISO timestamps; two keys never repeat.")
def create(ctx: Context):
    admin_key = _account(ctx, "create")
    metadata = {"team": "payments", "tier": 3, "hot": True}
    first, second = _create(ctx, admin_key, metadata), _create(ctx, admin_key)
    for data in (first, second):
        key = data["pubkey"]
        try:
            canonical = str(_pubkey(key)) if isinstance(key, str) else None
        except ValueError:
            canonical = None
        require(canonical == key and len(bytes(_pubkey(key))) == 32, "pubkey is not a canonical base58 key",
                expected="base58 of 32 bytes", actual=key)
        require(is_iso8601(data["createdAt"]) and is_iso8601(data["updatedAt"]), "timestamps are not ISO 8601",
                expected="ISO 8601", actual=(data["createdAt"], data["updatedAt"]))
    require(first["metadata"] == metadata, "metadata differs from what was sent", expected=metadata,
            actual=first["metadata"])
    require(first["pubkey"] != second["pubkey"], "two accounts got the same key", expected="distinct",
            actual=first["pubkey"])


@check("solana/list", section="14.1", level=Level.MUST,
       requirement="solana:list MUST page the caller's accounts in creation order with totalCount, and show no "
                   "other account's keys.")
def list_accounts(ctx: Context):
    admin_key = _account(ctx, "list")
    made = [_create(ctx, admin_key, {"n": n}) for n in range(3)]
    page = _ok(ctx, LIST, {"adminKey": admin_key}, {"page": 2, "pageSize": 2}, "page 2 of 2")
    require(isinstance(page, dict) and set(page) == LIST_MEMBERS, "list data must have exactly items, totalCount, "
            "page, pageSize", expected=sorted(LIST_MEMBERS), actual=page)
    require(page["items"] == [made[2]] and page["totalCount"] == 3 and (page["page"], page["pageSize"]) == (2, 2),
            "page 2 of size 2 is wrong", expected={"items": [made[2]], "totalCount": 3}, actual=page)
    everything = _ok(ctx, LIST, {"adminKey": admin_key}, {"pageSize": 100}, "all")
    require([i["pubkey"] for i in everything["items"]] == [m["pubkey"] for m in made], "not in creation order",
            expected=[m["pubkey"] for m in made], actual=[i["pubkey"] for i in everything["items"]])
    other = _ok(ctx, LIST, {"adminKey": _account(ctx, "list-other")}, None, "another account")
    require(other["items"] == [] and other["totalCount"] == 0, "another account sees these keys",
            expected=0, actual=other["totalCount"])


@check("solana/sign-message", section="14.2", level=Level.MUST,
       requirement="solana:signMessage MUST sign the UTF-8 of a text message, or the bytes of a hex one, with "
                   "ed25519, answering a base58 signature that verifies for the key.")
def sign_message(ctx: Context):
    admin_key = _account(ctx, "sign-message")
    key = _create(ctx, admin_key)["pubkey"]
    cases = [("text", "conformance ✓ é 𝄞", "conformance ✓ é 𝄞".encode()), ("text", "", b""),
             ("hex", "0xdeadBEEF", bytes.fromhex("deadbeef")), ("hex", "00ff", b"\x00\xff")]
    for message_format, message, signed in cases:
        options = {"from": key, "message": message, "format": message_format}
        data = _ok(ctx, SIGN_MESSAGE, {"adminKey": admin_key}, options, f"{message_format} {message!r}")
        require(set(data) == {"signature"}, "signMessage data must be exactly {signature}", expected=["signature"],
                actual=sorted(data))
        _verify(key, data["signature"], signed, f"{message_format} message {message!r}")


@check("solana/sign-transaction", section="14.3", level=Level.MUST,
       requirement="solana:signTransaction MUST sign the serialised message of a legacy or v0 transaction "
                   "(lookup tables included) for `from`, answering {signature, signerPubkey}; the filled-in "
                   "transaction then verifies.")
def sign_transaction(ctx: Context):
    from solders.signature import Signature
    from solders.transaction import VersionedTransaction

    admin_key = _account(ctx, "sign-transaction")
    key = _create(ctx, admin_key)["pubkey"]
    cosigner = _fresh_key()
    cases = {
        "legacy transfer": _transaction(key, key, _fresh_key()),
        "legacy, another fee payer": _transaction(cosigner, key, _fresh_key()),
        "v0 transfer": _transaction(key, key, _fresh_key(), version="v0"),
        "v0 with a lookup table": _transaction(key, key, (to := _fresh_key()), version="v0", lookup=[to]),
    }
    for what, transaction in cases.items():
        data = _ok(ctx, SIGN_TRANSACTION, {"adminKey": admin_key}, {"from": key, "transaction": transaction}, what)
        require(isinstance(data, dict) and set(data) == {"signature", "signerPubkey"} and data["signerPubkey"] == key,
                f"{what}: data must be {{signature, signerPubkey: from}}", expected={"signerPubkey": key}, actual=data)
        _verify(key, data["signature"], _message_bytes(transaction), what)
        parsed = VersionedTransaction.from_bytes(base64.b64decode(transaction))
        keys = [str(k) for k in parsed.message.account_keys]
        signatures = list(parsed.signatures)
        signatures[keys.index(key)] = Signature.from_string(data["signature"])
        filled = VersionedTransaction.populate(parsed.message, signatures)
        require(filled.verify_with_results()[keys.index(key)], f"{what}: the filled-in transaction does not verify",
                expected=True, actual=False)


@check("solana/sign-transaction-invalid", section="14.3", level=Level.MUST,
       requirement="A transaction that is not base64, not a transaction, longer than 1232 bytes, followed by "
                   "extra bytes, or not to be signed by `from` MUST be refused with invalid_input.")
def sign_transaction_invalid(ctx: Context):
    admin_key = _account(ctx, "sign-transaction-invalid")
    key = _create(ctx, admin_key)["pubkey"]
    good = _transaction(key, key, _fresh_key())
    stranger = _fresh_key()
    cases = {
        "not base64": "this is not base64!",
        "not a transaction": base64.b64encode(os.urandom(8)).decode(),
        "over 1232 bytes": base64.b64encode(bytes(1300)).decode(),
        "trailing bytes": base64.b64encode(base64.b64decode(good) + b"\x00").decode(),
        "from is not a signer": _transaction(stranger, stranger, _fresh_key()),
        "a number": 7,
    }
    for what, transaction in cases.items():
        exchange = ctx.client.call(SIGN_TRANSACTION, auth={"adminKey": admin_key},
                                   options={"from": key, "transaction": transaction})
        expect_refusal(exchange, what, "invalid_input")


@check("solana/choose-key", section="14.2", level=Level.MUST,
       requirement="A `from` that is not a canonical base58 key MUST be refused with invalid_input; one that is not "
                   "the caller's (unknown, or another account's) MUST be answered not_found.")
def choose_key(ctx: Context):
    admin_key = _account(ctx, "choose-key")
    key = _create(ctx, admin_key)["pubkey"]
    other_admin = _account(ctx, "choose-key-other")
    for what, sender, auth, code in (
            ("a 0x address", "0x" + "12" * 20, admin_key, "invalid_input"),
            ("a number", 5, admin_key, "invalid_input"),
            ("an unknown key", _fresh_key(), admin_key, "not_found"),
            ("another account's key", key, other_admin, "not_found")):
        exchange = ctx.client.call(SIGN_MESSAGE, auth={"adminKey": auth}, options={"from": sender, "message": "x"})
        expect_refusal(exchange, what, code)


@check("solana/transaction-patterns", section="14.4", level=Level.MUST,
       requirement="Each member of a solana:signTransaction component's transactionPatterns (programs, "
                   "writableAccounts, requiredCosigners, maxInstructions, canPayFees) MUST allow what it names and "
                   "deny the rest (auth_insufficient_scope); lookup-table accounts are never allowed by an account rule.")
def transaction_patterns(ctx: Context):
    admin_key = _account(ctx, "transaction-patterns")
    key = _create(ctx, admin_key)["pubkey"]
    to, cosigner = _fresh_key(), _fresh_key()
    plain = _transaction(key, key, to)
    with_memo = _transaction(key, key, to, memo_signer=cosigner)
    paid_by_other = _transaction(cosigner, key, to)
    via_table = _transaction(key, key, to, version="v0", lookup=[to])
    cases = [
        ({"programs": {"type": "allow", "programs": [SYSTEM_PROGRAM]}}, plain, True),
        ({"programs": {"type": "allow", "programs": [SYSTEM_PROGRAM]}}, with_memo, False),
        ({"programs": {"type": "deny", "programs": [MEMO_PROGRAM]}}, plain, True),
        ({"programs": {"type": "deny", "programs": [MEMO_PROGRAM]}}, with_memo, False),
        ({"writableAccounts": {"type": "allow", "accounts": [to]}}, plain, True),
        ({"writableAccounts": {"type": "allow", "accounts": [cosigner]}}, plain, False),
        ({"writableAccounts": {"type": "deny", "accounts": [cosigner]}}, plain, True),
        ({"writableAccounts": {"type": "deny", "accounts": [to]}}, plain, False),
        ({"writableAccounts": {"type": "deny", "accounts": [cosigner]}}, via_table, False),
        ({"requiredCosigners": [cosigner]}, with_memo, True),
        ({"requiredCosigners": [cosigner]}, plain, False),
        ({"maxInstructions": 2}, with_memo, True),
        ({"maxInstructions": 1}, with_memo, False),
        ({"canPayFees": False}, paid_by_other, True),
        ({"canPayFees": False}, plain, False),
    ]
    wrong = []
    for patterns, transaction, allowed in cases:
        token = _token(ctx, admin_key, [{"type": SIGN_TRANSACTION, "transactionPatterns": patterns}])
        exchange = ctx.client.call(SIGN_TRANSACTION, auth={"accessToken": token},
                                   options={"from": key, "transaction": transaction})
        if exchange.error_code in ("unknown_operation", "unsupported_operation"):
            raise CheckUnimplemented(f"{SIGN_TRANSACTION}: target reports {exchange.error_code}")
        if allowed and not exchange.ok:
            wrong.append((patterns, "refused", exchange.error_code))
        elif allowed:
            _verify(key, exchange.data.get("signature"), _message_bytes(transaction), f"allowed by {patterns}")
        elif exchange.ok or exchange.error_code != "auth_insufficient_scope":
            wrong.append((patterns, "allowed" if exchange.ok else "refused with", exchange.error_code))
    require(not wrong, f"{len(wrong)} of {len(cases)} transaction-pattern decisions are wrong",
            expected="each allowed or denied as 14.4 says", actual=wrong)


@check("solana/component-policies", section="14.4", level=Level.MUST,
       requirement="solana:signMessage allowlist and messagePattern, solana:read metadataPatterns and "
                   "solana:create requiredMetadataPatterns MUST each allow and deny as 14.4 says; a malformed "
                   "Solana component MUST be refused at creation with invalid_input.")
def component_policies(ctx: Context):
    admin_key = _account(ctx, "component-policies")
    hot = _create(ctx, admin_key, {"tier": "hot"})["pubkey"]
    cold = _create(ctx, admin_key, {"tier": "cold"})["pubkey"]
    signer = _token(ctx, admin_key, [{"type": SIGN_MESSAGE, "allowlist": [hot], "messagePattern": "^ok"}])
    decisions = [
        ("allowlisted key, matching message", ctx.client.call(
            SIGN_MESSAGE, auth={"accessToken": signer}, options={"from": hot, "message": "ok go"}), True),
        ("message pattern not found", ctx.client.call(
            SIGN_MESSAGE, auth={"accessToken": signer}, options={"from": hot, "message": "go ok"}), False),
        ("key not allowlisted", ctx.client.call(
            SIGN_MESSAGE, auth={"accessToken": signer}, options={"from": cold, "message": "ok"}), False),
    ]
    creator = _token(ctx, admin_key, [{"type": CREATE, "requiredMetadataPatterns": [
        {"key": "tier", "rule": {"pattern": "^hot$"}}]}])
    decisions += [
        ("create with the required metadata", ctx.client.call(
            CREATE, auth={"accessToken": creator}, options={"metadata": {"tier": "hot"}}), True),
        ("create without it", ctx.client.call(
            CREATE, auth={"accessToken": creator}, options={"metadata": {"tier": "cold"}}), False),
    ]
    wrong = [(what, exchange.error_code) for what, exchange, allowed in decisions
             if exchange.ok != allowed or (not allowed and exchange.error_code != "auth_insufficient_scope")]
    require(not wrong, "Solana component decisions are wrong", expected="14.4", actual=wrong)
    reader = _token(ctx, admin_key, [{"type": "solana:read", "metadataPatterns": [
        {"key": "tier", "rule": {"pattern": "^hot$"}}]}])
    listed = _ok(ctx, LIST, {"accessToken": reader}, {"pageSize": 100}, "solana:read filtered by metadata")
    everything = _ok(ctx, LIST, {"adminKey": admin_key}, {"pageSize": 100}, "all, with the admin key")
    expected = [item["pubkey"] for item in everything["items"] if item["metadata"].get("tier") == "hot"]
    require(cold in [item["pubkey"] for item in everything["items"]] and hot in expected,
            "the admin key's list lacks the accounts made", expected=[hot, cold],
            actual=[item.get("pubkey") for item in everything["items"]])
    require([item["pubkey"] for item in listed["items"]] == expected and listed["totalCount"] == len(expected),
            "solana:read metadataPatterns do not filter the list", expected=expected,
            actual=[item.get("pubkey") for item in listed["items"]])
    for component in ({"type": SIGN_MESSAGE, "allowlist": ["0x" + "12" * 20]},
                      {"type": SIGN_TRANSACTION, "transactionPatterns": {"programs": {"type": "maybe", "programs": []}}},
                      {"type": SIGN_TRANSACTION, "transactionPatterns": {"maxInstructions": -1}},
                      {"type": SIGN_TRANSACTION, "transactionPatterns": {"feePayer": hot}}):
        exchange = ctx.client.call("accessToken:create", auth={"adminKey": admin_key},
                                   options={"policies": [component], "expiresAt": FUTURE, "metadata": {}})
        expect_refusal(exchange, f"malformed component {component}", "invalid_input")


SOLANA_TYPES = (CREATE, "solana:read", SIGN_MESSAGE, SIGN_TRANSACTION)
_COMPONENT_OF = {CREATE: CREATE, LIST: "solana:read", SIGN_MESSAGE: SIGN_MESSAGE, SIGN_TRANSACTION: SIGN_TRANSACTION}


@check("solana/authorization-matrix", section="14.4", level=Level.MUST,
       requirement="Each Solana operation MUST be allowed or refused as 13.4 and 13.7 say for each credential: the "
                   "admin key, a token allowing it, a token of other types only, a signed token narrowing to it or "
                   "away from it, a signed token allowing it over a base that denies it, a signed token from a "
                   "revoked base or expired, a token from before a rotation, another account's token.")
def authorization_matrix(ctx: Context):
    import time

    from .tokens import signed_token

    admin_key = _account(ctx, "matrix")
    other_admin = _account(ctx, "matrix-other")
    key = _create(ctx, admin_key)["pubkey"]
    theirs = _token(ctx, other_admin, [{"type": t} for t in SOLANA_TYPES])
    every = _token(ctx, admin_key, [{"type": t} for t in SOLANA_TYPES])
    revoked = _ok(ctx, "accessToken:create", {"adminKey": admin_key},
                  {"policies": [{"type": t} for t in SOLANA_TYPES], "expiresAt": FUTURE, "metadata": {}}, "to revoke")
    _ok(ctx, "accessToken:revoke", {"adminKey": admin_key}, {"id": revoked["id"]}, "revoke a base token")
    public_key = ctx.client.enclave_public_key

    def sat(base: str, component_types, **extra) -> dict:
        return {"accessToken": signed_token(public_key, base, [{"type": t} for t in component_types], **extra)}

    options = {CREATE: {"metadata": {}}, LIST: None, SIGN_MESSAGE: {"from": key, "message": "matrix"},
               SIGN_TRANSACTION: {"from": key, "transaction": _transaction(key, key, _fresh_key())}}
    wrong = []
    for operation, component in _COMPONENT_OF.items():
        others = [t for t in SOLANA_TYPES if t != component]
        allowing, denying = _token(ctx, admin_key, [{"type": component}]), _token(ctx, admin_key, [{"type": t} for t in others])
        cases = [
            ("the admin key", {"adminKey": admin_key}, None),
            ("a token allowing it", {"accessToken": allowing}, None),
            ("a token of other types only", {"accessToken": denying}, "auth_insufficient_scope"),
            ("a signed token narrowing to it", sat(every, [component]), None),
            ("a signed token narrowing away from it", sat(every, others), "auth_insufficient_scope"),
            ("a signed token allowing it over a denying base", sat(denying, [component]), "auth_insufficient_scope"),
            ("a signed token from a revoked base", sat(revoked["accessToken"], SOLANA_TYPES), "auth_invalid_access_token"),
            ("an expired signed token", sat(every, SOLANA_TYPES, exp=int(time.time()) - 5), "auth_invalid_access_token"),
        ]
        if operation in (SIGN_MESSAGE, SIGN_TRANSACTION):
            cases.append(("another account's token", {"accessToken": theirs}, "not_found"))
        for what, auth, refusal in cases:
            exchange = ctx.client.call(operation, auth=auth, options=options[operation])
            if exchange.error_code in ("unknown_operation", "unsupported_operation"):
                raise CheckUnimplemented(f"{operation}: target reports {exchange.error_code}")
            if refusal is None and not exchange.ok:
                wrong.append((operation, what, "refused", exchange.error_code))
            elif refusal is not None and (exchange.ok or exchange.error_code != refusal):
                wrong.append((operation, what, "allowed" if exchange.ok else exchange.error_code, f"expected {refusal}"))
    # Another account's token lists that account's keys only.
    listed = _ok(ctx, LIST, {"accessToken": theirs}, {"pageSize": 100}, "another account's token")
    if key in [item.get("pubkey") for item in listed.get("items", [])]:
        wrong.append((LIST, "another account's token", "shows this account's key", ""))
    # A rotation kills every token of the account (6.4, 13.3).
    codes = _ok(ctx, "serviceAccount:create", None, {"metadata": {}}, "an account to rotate")
    rotated_key = _create(ctx, codes["adminKey"])["pubkey"]
    before = _token(ctx, codes["adminKey"], [{"type": t} for t in SOLANA_TYPES])
    _ok(ctx, "serviceAccount:rotate", {"rotationCode": codes["rotationCode"]}, None, "rotate")
    exchange = ctx.client.call(SIGN_MESSAGE, auth={"accessToken": before}, options={"from": rotated_key, "message": "x"})
    if exchange.ok or exchange.error_code != "auth_invalid_access_token":
        wrong.append((SIGN_MESSAGE, "a token from before a rotation", exchange.error_code, "expected auth_invalid_access_token"))
    require(not wrong, f"{len(wrong)} Solana authorization decisions are wrong", expected="13.4, 13.7, 14.4",
            actual=wrong)


# ---- generated policies and transactions against a model of 14.4 --------------------------------

def _header_writable(message) -> list[str]:
    """The static accounts the header declares writable (14.4's definition)."""
    keys = [str(k) for k in message.account_keys]
    header = message.header
    signers = header.num_required_signatures
    return [k for i, k in enumerate(keys)
            if i < signers - header.num_readonly_signed_accounts
            or signers <= i < len(keys) - header.num_readonly_unsigned_accounts]


def model_allows(patterns: dict, transaction_b64: str, signer: str) -> bool:
    """14.4, written here from the spec: does ``transactionPatterns`` allow signing this transaction?"""
    from solders.message import MessageV0
    from solders.transaction import VersionedTransaction

    message = VersionedTransaction.from_bytes(base64.b64decode(transaction_b64)).message
    keys = [str(k) for k in message.account_keys]
    signers = keys[:message.header.num_required_signatures]
    programs = [keys[ix.program_id_index] if ix.program_id_index < len(keys) else None
                for ix in message.instructions]
    from_tables = sum(len(t.writable_indexes) for t in message.address_table_lookups) \
        if isinstance(message, MessageV0) else 0
    writable = [k for k in _header_writable(message) if k != signer]
    if "programs" in patterns:
        kind, listed = patterns["programs"]["type"], set(patterns["programs"]["programs"])
        if None in programs or (kind == "allow" and not set(programs) <= listed) or \
                (kind == "deny" and set(programs) & listed):
            return False
    if "writableAccounts" in patterns:
        kind, listed = patterns["writableAccounts"]["type"], set(patterns["writableAccounts"]["accounts"])
        if from_tables or (kind == "allow" and not set(writable) <= listed) or \
                (kind == "deny" and set(writable) & listed):
            return False
    if not set(patterns.get("requiredCosigners", [])) <= set(signers):
        return False
    if "maxInstructions" in patterns and len(message.instructions) > patterns["maxInstructions"]:
        return False
    return not (patterns.get("canPayFees") is False and signers[0] == signer)


@check("solana/policy-property", section="14.4", level=Level.MUST,
       requirement="For generated transactionPatterns and transactions, solana:signTransaction through a token MUST "
                   "be allowed exactly when 14.4 says (a model written from the spec decides), and refused with "
                   "auth_insufficient_scope otherwise.")
def policy_property(ctx: Context):
    from hypothesis import example, given
    from hypothesis import strategies as st

    from ._util import property_check

    admin_key = _account(ctx, "policy-property")
    key = _create(ctx, admin_key)["pubkey"]
    to, cosigner, stranger = _fresh_key(), _fresh_key(), _fresh_key()
    shapes = {
        "transfer": _transaction(key, key, to),
        "transfer + memo signed by a cosigner": _transaction(key, key, to, memo_signer=cosigner),
        "paid by the cosigner": _transaction(cosigner, key, to),
        "v0 transfer": _transaction(key, key, to, version="v0"),
        "v0, recipient from a lookup table": _transaction(key, key, to, version="v0", lookup=[to]),
    }
    pool = [SYSTEM_PROGRAM, MEMO_PROGRAM, key, to, cosigner, stranger]
    keys = st.lists(st.sampled_from(pool), max_size=3, unique=True)
    members = {
        "programs": st.fixed_dictionaries({"type": st.sampled_from(["allow", "deny"]), "programs": keys}),
        "writableAccounts": st.fixed_dictionaries({"type": st.sampled_from(["allow", "deny"]), "accounts": keys}),
        "requiredCosigners": keys,
        "maxInstructions": st.integers(0, 3),
        "canPayFees": st.booleans(),
    }
    # One member alone most of the time (so no other member's denial hides it), and combinations.
    patterns = st.one_of(*(st.fixed_dictionaries({name: strategy}) for name, strategy in members.items()),
                         st.fixed_dictionaries({}, optional=members))
    wrong = []

    @property_check(ctx, 40)
    @given(patterns, st.sampled_from(sorted(shapes)))
    # Always tried, whatever the draw: each member alone where it decides.
    @example({"canPayFees": False}, "transfer")
    @example({"maxInstructions": 1}, "transfer + memo signed by a cosigner")
    @example({"requiredCosigners": [cosigner]}, "transfer")
    @example({"programs": {"type": "allow", "programs": [SYSTEM_PROGRAM]}}, "transfer + memo signed by a cosigner")
    @example({"writableAccounts": {"type": "deny", "accounts": [to]}}, "transfer")
    def prop(drawn, shape):
        transaction = shapes[shape]
        token = _token(ctx, admin_key, [{"type": SIGN_TRANSACTION, "transactionPatterns": drawn}])
        exchange = ctx.client.call(SIGN_TRANSACTION, auth={"accessToken": token},
                                   options={"from": key, "transaction": transaction})
        if exchange.error_code in ("unknown_operation", "unsupported_operation"):
            raise CheckUnimplemented(f"{SIGN_TRANSACTION}: target reports {exchange.error_code}")
        expected = model_allows(drawn, transaction, key)
        if expected and exchange.ok:
            _verify(key, exchange.data.get("signature"), _message_bytes(transaction), f"{shape} under {drawn}")
        elif expected != exchange.ok or (not expected and exchange.error_code != "auth_insufficient_scope"):
            wrong.append({"patterns": drawn, "transaction": shape, "model": "allow" if expected else "deny",
                          "vault": "allow" if exchange.ok else exchange.error_code})
        require(not wrong, "the Vault and the 14.4 model disagree", expected="the model's decision", actual=wrong[:5])

    prop()
