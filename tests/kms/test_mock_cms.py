"""CiphertextForRecipient: both real KMS answers parse to their manifest's fields; the mock's CMS
has the same shape byte for byte (after masking the random fields) and opens with the recipient's
RSA private key, and with no other key."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import json

import pytest
from asn1crypto import cms as acms
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from harness.kms.cms import CmsError, build_enveloped_data, open_enveloped_data, parse_enveloped_data

KMS_DIR = importlib.resources.files("vectors") / "kms"
MANIFEST = json.loads((KMS_DIR / "manifest.json").read_text())
FIXTURES = {d["file"]: ((KMS_DIR / d["file"]).read_bytes(), d) for d in MANIFEST["documents"]}


def _rsa(bits: int = 2048):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key, key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def recipient():
    return _rsa()


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_real_kms_answers_parse_to_their_manifest(name):
    data, entry = FIXTURES[name]
    fields = dataclasses.asdict(parse_enveloped_data(data))
    expected = {k: v for k, v in entry.items() if k != "file"}
    assert {k: fields[k] for k in expected} == expected
    assert fields["oaep_mgf_hash"] == "sha256"
    assert data[:2] == b"\x30\x80" and data.endswith(b"\x00\x00")  # BER, indefinite length


def _mask(buf: bytes) -> bytes:
    """The structure without the fields that are random per answer."""
    f = parse_enveloped_data(buf)
    for h in (f.rid_subject_key_identifier, f.encrypted_key_hex, f.iv_hex, f.encrypted_content_hex):
        buf = buf.replace(bytes.fromhex(h), b"\xee" * (len(h) // 2))
    return buf


def test_mock_output_has_the_shape_of_the_real_32_byte_answer(recipient):
    key, spki = recipient
    ours = build_enveloped_data(bytes(range(32)), spki)
    real = FIXTURES["kms-recipient-1.ber"][0]
    assert len(ours) == len(real)
    assert _mask(ours) == _mask(real)  # every tag, length and algorithm byte identical


def test_mock_output_parses_like_the_fixtures_and_opens(recipient):
    key, spki = recipient
    plaintext = b"the data key, 32 bytes long....."
    ours = build_enveloped_data(plaintext, spki)
    f = parse_enveloped_data(ours)
    assert (f.envelopedData_version, f.recipient_version, f.key_encryption_algorithm, f.oaep_hash,
            f.content_encryption_algorithm) == ("v2", "v2", "rsaes_oaep", "sha256", "aes256_cbc")
    assert f.rid_subject_key_identifier == hashlib.sha256(spki).hexdigest()
    assert len(bytes.fromhex(f.encrypted_key_hex)) == 256 and len(bytes.fromhex(f.iv_hex)) == 16
    assert acms.ContentInfo.load(ours)["content"]["version"].native == "v2"
    assert open_enveloped_data(ours, key) == plaintext


@pytest.mark.parametrize("size", [1, 15, 16, 17, 1024, 3000])
def test_any_length_round_trips_with_pkcs7_padding(recipient, size):
    key, spki = recipient
    data = bytes(i % 251 for i in range(size))
    ours = build_enveloped_data(data, spki)
    assert len(bytes.fromhex(parse_enveloped_data(ours).encrypted_content_hex)) == (size // 16 + 1) * 16
    assert open_enveloped_data(ours, key) == data


def test_another_key_cannot_open(recipient):
    _, spki = recipient
    other, _ = _rsa()
    with pytest.raises(CmsError):
        open_enveloped_data(build_enveloped_data(b"secret", spki), other)


def test_malformed_and_non_rsa_inputs_are_typed_errors(recipient):
    key, spki = recipient
    good = build_enveloped_data(b"x", spki)
    for bad in (b"", b"\x30\x80", good[:-7], b"\x04\x01\x00"):
        with pytest.raises(CmsError):
            parse_enveloped_data(bad)
    ec_spki = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(Encoding.DER,
                                                                                 PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(CmsError):
        build_enveloped_data(b"x", ec_spki)
