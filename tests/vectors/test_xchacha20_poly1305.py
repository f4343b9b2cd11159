"""XChaCha20-Poly1305-IETF with libsodium (PyNaCl), the AEAD of both envelope implementations.

Wycheproof consumer policy: valid must encrypt to ct || tag and decrypt back to msg; invalid
must be refused: InvalidNonceSize by a length error before any cipher runs, ModifiedTag and the
other forged ciphertexts by a failed tag check (nacl.exceptions.CryptoError, the base of both).
No case is 'acceptable' in this file; one would fail the test until a policy is written here.
"""

from __future__ import annotations

import nacl.bindings as sodium
import nacl.exceptions
import pytest

from ._support import cases, h


def _check(test: dict) -> None:
    key, nonce, aad, msg = h(test["key"]), h(test["iv"]), h(test["aad"]), h(test["msg"])
    sealed = h(test["ct"]) + h(test["tag"])
    if test["result"] == "valid":
        assert sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(msg, aad, nonce, key) == sealed
        assert sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(sealed, aad, nonce, key) == msg
    elif test["result"] == "invalid":
        with pytest.raises(nacl.exceptions.CryptoError):
            sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(sealed, aad, nonce, key)
        if "InvalidNonceSize" in test["flags"]:
            with pytest.raises(nacl.exceptions.CryptoError):
                sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(msg, aad, nonce, key)
    else:
        raise AssertionError(f"no policy for acceptable case flags {test['flags']}")


@pytest.mark.parametrize(("group", "test"), cases("xchacha20_poly1305_draft03"))
def test_draft_irtf_cfrg_xchacha_03(group, test):
    assert (group["ivSize"], group["keySize"], group["tagSize"]) == (192, 256, 128)
    _check(test)


@pytest.mark.parametrize(("group", "test"), cases("xchacha20_poly1305_test"))
def test_wycheproof(group, test):
    assert (group["keySize"], group["tagSize"]) == (256, 128)
    _check(test)


@pytest.mark.parametrize(("group", "test"), cases("hchacha20_draft03"))
def test_hchacha20_subkey(group, test):
    """PyNaCl exposes no HChaCha20, so check the subkey through the XChaCha20 construction
    (draft-irtf-cfrg-xchacha-03 section 2.3): XChaCha20-Poly1305 under (key, nonce16 || n8)
    equals ChaCha20-Poly1305-IETF under (subkey, 0x00000000 || n8)."""
    assert test["result"] == "valid"
    key, nonce16, subkey = h(test["key"]), h(test["nonce"]), h(test["subkey"])
    n8, msg, aad = bytes(range(8)), bytes(range(200)), b"aad"
    assert sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(msg, aad, nonce16 + n8, key) == (
        sodium.crypto_aead_chacha20poly1305_ietf_encrypt(msg, aad, bytes(4) + n8, subkey)
    )
