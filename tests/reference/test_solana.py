"""Solana accounts and signing through the enclave's request loop (docs/spec/14-solana.md), in-process.

Signatures are verified with pyca/cryptography's ed25519 (OpenSSL), not with the reference's
libsodium; transactions are built with solders the way a client would build them.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction

from .test_access_tokens import FUTURE, make_token, run
from .test_eoa import ok, refused
from .test_service import make_enclave

MEMO = Pubkey.from_string("MemoSq4gqABAXKHr9SsV2YZ4Ua4XFYanWkkQdBKYTY1")
SYSTEM = Pubkey.from_string("11111111111111111111111111111111")


@pytest.fixture
def enclave(tmp_path):
    return make_enclave(tmp_path / "vault.db")


@pytest.fixture
def admin_key(enclave):
    return ok(run(enclave, "serviceAccount:create", None, {"metadata": {}}))["adminKey"]


def create(enclave, admin_key, metadata=None):
    return ok(run(enclave, "solana:create", {"adminKey": admin_key}, {"metadata": metadata or {}}))


def verifies(pubkey: str, signature_b58: str, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes(Pubkey.from_string(pubkey))).verify(
            bytes(Signature.from_string(signature_b58)), message)
        return True
    except Exception:
        return False


def legacy_transfer(payer: Pubkey, source: Pubkey, to: Pubkey, extra=()) -> str:
    message = Message.new_with_blockhash([transfer(TransferParams(from_pubkey=source, to_pubkey=to, lamports=5)),
                                          *extra], payer, Hash.new_unique())
    return base64.b64encode(bytes(Transaction.new_unsigned(message))).decode()


def v0_transfer(payer: Pubkey, to: Pubkey, lookup: list[Pubkey] = ()) -> str:
    tables = [AddressLookupTableAccount(key=Keypair().pubkey(), addresses=list(lookup))] if lookup else []
    message = MessageV0.try_compile(payer, [transfer(TransferParams(from_pubkey=payer, to_pubkey=to, lamports=5))],
                                    tables, Hash.new_unique())
    return base64.b64encode(bytes(VersionedTransaction.populate(message, [Signature.default()]))).decode()


def message_of(transaction_b64: str) -> bytes:
    return bytes(to_bytes_versioned(VersionedTransaction.from_bytes(base64.b64decode(transaction_b64)).message))


def test_create_list_and_pagination(enclave, admin_key):
    made = [create(enclave, admin_key, {"n": n}) for n in range(3)]
    for account in made:
        assert set(account) == {"pubkey", "metadata", "createdAt", "updatedAt"}
        assert len(bytes(Pubkey.from_string(account["pubkey"]))) == 32
    page = ok(run(enclave, "solana:list", {"adminKey": admin_key}, {"page": 2, "pageSize": 2}))
    assert page == {"items": [made[2]], "totalCount": 3, "page": 2, "pageSize": 2}
    other = ok(run(enclave, "serviceAccount:create", None, {"metadata": {}}))["adminKey"]
    assert ok(run(enclave, "solana:list", {"adminKey": other}))["totalCount"] == 0


def test_sign_message_text_and_hex(enclave, admin_key):
    key = create(enclave, admin_key)["pubkey"]
    text = ok(run(enclave, "solana:signMessage", {"adminKey": admin_key}, {"from": key, "message": "héllo"}))
    assert verifies(key, text["signature"], "héllo".encode())
    raw = ok(run(enclave, "solana:signMessage", {"adminKey": admin_key},
                 {"from": key, "message": "0xdeadbeef", "format": "hex"}))
    assert verifies(key, raw["signature"], bytes.fromhex("deadbeef"))
    assert not verifies(key, raw["signature"], b"0xdeadbeef")


@pytest.mark.parametrize("kind", ["legacy", "v0"])
def test_sign_transaction_signs_the_message_bytes(enclave, admin_key, kind):
    key = Pubkey.from_string(create(enclave, admin_key)["pubkey"])
    tx = legacy_transfer(key, key, Keypair().pubkey()) if kind == "legacy" else v0_transfer(key, Keypair().pubkey())
    data = ok(run(enclave, "solana:signTransaction", {"adminKey": admin_key}, {"from": str(key), "transaction": tx}))
    assert data["signerPubkey"] == str(key)
    assert verifies(str(key), data["signature"], message_of(tx))
    # The signature fills the signer's slot: the whole transaction then verifies (solders).
    parsed = VersionedTransaction.from_bytes(base64.b64decode(tx))
    signed = VersionedTransaction.populate(parsed.message, [Signature.from_string(data["signature"])])
    assert all(signed.verify_with_results())


@pytest.mark.parametrize("options,why", [
    ({"transaction": "not base64!"}, "base64"),
    ({"transaction": base64.b64encode(b"\x01" * 64).decode()}, "valid Solana transaction"),
    ({"transaction": ""}, "1 to 1232"),
    ({"transaction": base64.b64encode(b"\x00" * 1300).decode()}, "1 to 1232"),
    ({"transaction": 7}, "base64 string"),
])
def test_malformed_transactions_are_invalid_input(enclave, admin_key, options, why):
    key = create(enclave, admin_key)["pubkey"]
    reply = run(enclave, "solana:signTransaction", {"adminKey": admin_key}, {"from": key, **options})
    refused(reply, "invalid_input")
    assert why in reply["error"]["message"]


def test_a_key_that_is_not_a_signer_and_unknown_keys(enclave, admin_key):
    key = create(enclave, admin_key)["pubkey"]
    stranger = Keypair().pubkey()
    refused(run(enclave, "solana:signTransaction", {"adminKey": admin_key},
                {"from": key, "transaction": legacy_transfer(stranger, stranger, SYSTEM)}), "invalid_input")
    refused(run(enclave, "solana:signMessage", {"adminKey": admin_key}, {"from": str(stranger), "message": "x"}),
            "not_found")
    refused(run(enclave, "solana:signMessage", {"adminKey": admin_key}, {"from": "0x12", "message": "x"}),
            "invalid_input")
    other = ok(run(enclave, "serviceAccount:create", None, {"metadata": {}}))["adminKey"]
    refused(run(enclave, "solana:signMessage", {"adminKey": other}, {"from": key, "message": "x"}), "not_found")


# ---- policies (14.4) ------------------------------------------------------------------------------

def _token(enclave, admin_key, component):
    return make_token(enclave, admin_key, [component])["accessToken"]


def _sign_tx(enclave, token, key, tx):
    return run(enclave, "solana:signTransaction", {"accessToken": token}, {"from": str(key), "transaction": tx})


def test_each_transaction_pattern_allows_and_denies(enclave, admin_key):
    key = Pubkey.from_string(create(enclave, admin_key)["pubkey"])
    to, cosigner = Keypair().pubkey(), Keypair().pubkey()
    plain = legacy_transfer(key, key, to)
    memo = Instruction(MEMO, b"hi", [AccountMeta(cosigner, is_signer=True, is_writable=False)])
    with_memo = legacy_transfer(key, key, to, extra=[memo])
    paid_by_other = legacy_transfer(cosigner, key, to)
    cases = [  # (transactionPatterns, transaction, allowed)
        ({"programs": {"type": "allow", "programs": [str(SYSTEM)]}}, plain, True),
        ({"programs": {"type": "allow", "programs": [str(SYSTEM)]}}, with_memo, False),
        ({"programs": {"type": "deny", "programs": [str(MEMO)]}}, with_memo, False),
        ({"programs": {"type": "deny", "programs": [str(MEMO)]}}, plain, True),
        ({"writableAccounts": {"type": "allow", "accounts": [str(to)]}}, plain, True),
        ({"writableAccounts": {"type": "allow", "accounts": [str(cosigner)]}}, plain, False),
        ({"writableAccounts": {"type": "deny", "accounts": [str(to)]}}, plain, False),
        ({"requiredCosigners": [str(cosigner)]}, with_memo, True),
        ({"requiredCosigners": [str(cosigner)]}, plain, False),
        ({"maxInstructions": 1}, plain, True),
        ({"maxInstructions": 1}, with_memo, False),
        ({"canPayFees": False}, plain, False),
        ({"canPayFees": False}, paid_by_other, True),
        ({"canPayFees": True}, plain, True),
        ({}, with_memo, True),
    ]
    for patterns, tx, allowed in cases:
        token = _token(enclave, admin_key, {"type": "solana:signTransaction", "transactionPatterns": patterns})
        reply = _sign_tx(enclave, token, key, tx)
        if allowed:
            assert verifies(str(key), ok(reply)["signature"], message_of(tx)), patterns
        else:
            refused(reply, "auth_insufficient_scope")


def test_lookup_table_accounts_are_never_allowed_by_an_account_rule(enclave, admin_key):
    key = Pubkey.from_string(create(enclave, admin_key)["pubkey"])
    to = Keypair().pubkey()
    via_table = v0_transfer(key, to, lookup=[to])  # the recipient is loaded from a lookup table
    for kind in ("allow", "deny"):
        token = _token(enclave, admin_key, {"type": "solana:signTransaction",
                                             "transactionPatterns": {"writableAccounts": {"type": kind, "accounts": [str(to)]}}})
        refused(_sign_tx(enclave, token, key, via_table), "auth_insufficient_scope")


def test_allowlist_metadata_and_message_patterns(enclave, admin_key):
    hot = create(enclave, admin_key, {"tier": "hot"})["pubkey"]
    cold = create(enclave, admin_key, {"tier": "cold"})["pubkey"]
    token = _token(enclave, admin_key, {"type": "solana:signMessage", "allowlist": [hot], "messagePattern": "^ok"})
    ok(run(enclave, "solana:signMessage", {"accessToken": token}, {"from": hot, "message": "ok go"}))
    refused(run(enclave, "solana:signMessage", {"accessToken": token}, {"from": hot, "message": "no"}),
            "auth_insufficient_scope")
    refused(run(enclave, "solana:signMessage", {"accessToken": token}, {"from": cold, "message": "ok"}),
            "auth_insufficient_scope")
    reader = _token(enclave, admin_key, {"type": "solana:read",
                                         "metadataPatterns": [{"key": "tier", "rule": {"pattern": "^hot$"}}]})
    listed = ok(run(enclave, "solana:list", {"accessToken": reader}))
    assert [item["pubkey"] for item in listed["items"]] == [hot] and listed["totalCount"] == 1
    creator = _token(enclave, admin_key, {"type": "solana:create",
                                          "requiredMetadataPatterns": [{"key": "tier", "rule": {"pattern": "^hot$"}}]})
    ok(run(enclave, "solana:create", {"accessToken": creator}, {"metadata": {"tier": "hot"}}))
    refused(run(enclave, "solana:create", {"accessToken": creator}, {"metadata": {"tier": "cold"}}),
            "auth_insufficient_scope")
    eoa_only = make_token(enclave, admin_key, [{"type": "eoa:read"}], expires_at=FUTURE)["accessToken"]
    refused(run(enclave, "solana:list", {"accessToken": eoa_only}), "auth_insufficient_scope")


def test_a_signed_token_only_narrows_solana_components(enclave, admin_key):
    import time

    from .test_access_tokens import signed_token

    key = create(enclave, admin_key)["pubkey"]
    base = make_token(enclave, admin_key, [{"type": "solana:signMessage"}])
    narrowed = signed_token(enclave, base["accessToken"], [{"type": "solana:signMessage", "messagePattern": "^ok"}],
                            int(time.time()) + 600)
    ok(run(enclave, "solana:signMessage", {"accessToken": narrowed}, {"from": key, "message": "ok then"}))
    refused(run(enclave, "solana:signMessage", {"accessToken": narrowed}, {"from": key, "message": "no"}),
            "auth_insufficient_scope")
    # A signed token cannot add what its base token lacks.
    widened = signed_token(enclave, base["accessToken"], [{"type": "solana:signTransaction"}], int(time.time()) + 600)
    refused(run(enclave, "solana:signTransaction", {"accessToken": widened},
                {"from": key, "transaction": legacy_transfer(Pubkey.from_string(key), Pubkey.from_string(key), SYSTEM)}),
            "auth_insufficient_scope")
    ok(run(enclave, "accessToken:revoke", {"adminKey": admin_key}, {"id": base["id"]}))
    refused(run(enclave, "solana:signMessage", {"accessToken": narrowed}, {"from": key, "message": "ok"}),
            "auth_invalid_access_token")
