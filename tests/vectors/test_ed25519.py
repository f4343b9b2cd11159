"""RFC 8032 Ed25519 known answers (vectors/ed25519_rfc8032.json) through the reference's Solana
signer (libsodium) and through OpenSSL (pyca/cryptography), so neither can agree with the other on
a wrong answer: the published bytes decide."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from reference.enclave import solana

from ._support import cases, h


@pytest.mark.parametrize(("group", "test"), cases("ed25519_rfc8032", group_type="Ed25519Sign"))
def test_reference_signer_reproduces_rfc8032(group, test):
    seed, message = h(test["seed"]), h(test["msg"])
    assert solana.public_key(seed).hex() == test["public"]
    assert solana.sign(seed, message).hex() == test["sig"]


@pytest.mark.parametrize(("group", "test"), cases("ed25519_rfc8032", group_type="Ed25519Sign"))
def test_openssl_agrees_with_the_published_answer(group, test):
    key = Ed25519PrivateKey.from_private_bytes(h(test["seed"]))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw.hex() == test["public"] and key.sign(h(test["msg"])).hex() == test["sig"]
    Ed25519PublicKey.from_public_bytes(h(test["public"])).verify(h(test["sig"]), h(test["msg"]))


@pytest.mark.parametrize(("group", "test"), cases("solana_kat", group_type="SolanaSignedTransaction"))
def test_published_signed_transactions_are_reproduced_by_the_signing_path(group, test):
    """wallet-core's signed transactions: the reference's parser takes the wire bytes, and each
    signer's seed reproduces the published signature in its slot over the message bytes."""
    import base64

    from solders.transaction import VersionedTransaction

    parsed = solana.parse_transaction(test["transaction"])
    published = VersionedTransaction.from_bytes(base64.b64decode(test["transaction"]))
    assert parsed.version == test["version"]
    for signer in test["signers"]:
        seed = h(signer["seed"])
        assert solana.base58(solana.public_key(seed)) == signer["pubkey"] == parsed.signers[signer["index"]]
        assert solana.base58(solana.sign(seed, parsed.message)) == str(published.signatures[signer["index"]])
    # The table-loaded writable account is counted, not named: its address is on chain, not in the bytes.
    assert parsed.unresolved_writable == (1 if "AddressTableLookup" in test["flags"] else 0)
