"""The CBOR byte vectors of the image-format repository's src/utils/cbor.rs, reproduced (§9.6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from enclave_build import errors
from enclave_build.signing import (
    PcrSignature,
    decode_pcr_info,
    decode_signature_section,
    encode_pcr_info,
    encode_signature_section,
)

DATA = json.loads((Path(__file__).resolve().parents[2] / "vectors" / "eif" / "cbor_rs.json").read_text())
GROUPS = {g["type"]: g for g in DATA["testGroups"]}
assert DATA["numberOfTests"] == sum(len(g["tests"]) for g in DATA["testGroups"]) == 2


@pytest.mark.parametrize("t", GROUPS["PcrInfo"]["tests"], ids=lambda t: f"cbor_rs/{t['tcId']}")
def test_pcr_info_bytes_match_upstream(t):
    assert encode_pcr_info(t["registerIndex"], bytes.fromhex(t["registerValue"])).hex() == t["cbor"]
    assert decode_pcr_info(bytes.fromhex(t["cbor"])) == (t["registerIndex"], bytes.fromhex(t["registerValue"]))


@pytest.mark.parametrize("t", GROUPS["SignatureSection"]["tests"], ids=lambda t: f"cbor_rs/{t['tcId']}")
def test_signature_section_bytes_match_upstream(t):
    sig = PcrSignature(bytes.fromhex(t["signingCertificate"]), bytes.fromhex(t["signature"]))
    assert encode_signature_section([sig]).hex() == t["cbor"]
    back = decode_signature_section(bytes.fromhex(t["cbor"]))
    assert back == [sig]
    assert back[0].signing_certificate.startswith(b"-----BEGIN") and len(back[0].signature) == 10


def test_round_trip_other_index():
    assert decode_pcr_info(encode_pcr_info(3, b"\xab" * 48)) == (3, b"\xab" * 48)


def test_trailing_bytes_are_rejected():
    t = GROUPS["PcrInfo"]["tests"][0]
    with pytest.raises(errors.BadSignatureSection, match="trailing"):
        decode_pcr_info(bytes.fromhex(t["cbor"]) + b"\x00")
    t = GROUPS["SignatureSection"]["tests"][0]
    with pytest.raises(errors.BadSignatureSection, match="trailing"):
        decode_signature_section(bytes.fromhex(t["cbor"]) + b"\x00")


@pytest.mark.parametrize("bad", ["80", "a0", "81a0", "81a2737369676e696e675f636572746966696361746581190100697369676e617475726580", "ff"])
def test_malformed_signature_sections_are_rejected(bad):
    with pytest.raises(errors.BadSignatureSection):
        decode_signature_section(bytes.fromhex(bad))
