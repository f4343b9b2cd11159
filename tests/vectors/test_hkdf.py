"""HKDF-SHA256 (RFC 5869) with pyca/cryptography, the KDF both envelope implementations use.

Wycheproof consumer policy: valid must match; invalid (SizeTooLarge: more than 255 * 32 bytes)
must be refused, which cryptography does with ValueError at construction. EmptySalt: an empty
salt equals an absent one (RFC 5869 section 2.2), which is how the envelope calls HKDF
(PROTOCOL.md section 2: salt absent), so for those cases ``salt=None`` must give the same output.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from ._support import cases, h


def hkdf(ikm: bytes, salt: bytes | None, info: bytes, size: int) -> bytes:
    return HKDF(hashes.SHA256(), size, salt, info).derive(ikm)


@pytest.mark.parametrize(("group", "test"), cases("hkdf_sha256_rfc5869"))
def test_rfc5869_known_answer(group, test):
    assert group["hash"] == "SHA-256"
    ikm, salt, info = h(test["ikm"]), h(test["salt"]), h(test["info"])
    prk = HKDF.extract(hashes.SHA256(), salt or None, ikm)
    assert prk.hex() == test["prk"]
    assert HKDFExpand(hashes.SHA256(), test["size"], info).derive(prk).hex() == test["okm"]
    assert hkdf(ikm, salt or None, info, test["size"]).hex() == test["okm"]


@pytest.mark.parametrize(("group", "test"), cases("hkdf_sha256_test"))
def test_wycheproof(group, test):
    ikm, salt, info, size = h(test["ikm"]), h(test["salt"]), h(test["info"]), test["size"]
    if test["result"] == "invalid":
        with pytest.raises(ValueError):
            hkdf(ikm, salt, info, size)
        return
    assert hkdf(ikm, salt, info, size).hex() == test["okm"]
    if "EmptySalt" in test["flags"]:
        assert hkdf(ikm, None, info, size).hex() == test["okm"]
