"""Signed EIFs (§9.6): COSE_Sign1 over PcrInfo(0, PCR0), PCR8 over the certificate's DER."""

from __future__ import annotations

import io

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from enclave_build import errors
from enclave_build.describe import describe_json, inspect_eif
from enclave_build.errors import ErrorCode
from enclave_build.signing import SigningKey, cose_sign1, cose_verify, decode_signature_section, verify_signature_section

from . import eif_oracle
from .conftest import make_cert, make_eif


def _check_cose_independently(cose: bytes, cert_pem: bytes, alg: int, hash_alg, size: int) -> bytes:
    """Decode and verify the COSE_Sign1 with cbor2 + cryptography only (RFC 8152 §4.4)."""
    obj = cbor2.loads(cose)
    assert isinstance(obj, list), "must be untagged"
    protected, unprotected, payload, sig = obj
    assert cbor2.loads(protected) == {1: alg} and unprotected == {}
    assert len(sig) == 2 * size
    to_be_signed = cbor2.dumps(["Signature1", protected, b"", payload])
    pub = x509.load_pem_x509_certificate(cert_pem).public_key()
    pub.verify(encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")), to_be_signed, ec.ECDSA(hash_alg))
    return payload


def test_signed_eif_has_pcr8_and_a_cose_signature_over_pcr0(tmp_path, p384_identity):
    cert_pem, key_pem = p384_identity
    data, meas = make_eif(tmp_path, signing_key=SigningKey.from_pem(cert_pem, key_pem))
    sections = eif_oracle.parse_eif(data)["sections"]
    section = sections[-1]["data"]
    # the section, decoded generically: [{"signing_certificate": [uints], "signature": [uints]}]
    raw = cbor2.loads(section)
    assert list(raw[0]) == ["signing_certificate", "signature"]
    assert bytes(raw[0]["signing_certificate"]) == cert_pem
    payload = _check_cose_independently(bytes(raw[0]["signature"]), cert_pem, -35, hashes.SHA384(), 48)
    assert cbor2.loads(payload) == {"register_index": 0, "register_value": list(bytes.fromhex(meas.pcr0))}
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    assert meas.pcr8 == eif_oracle._pcr([der])
    # signing does not change PCR0-2
    _, unsigned = make_eif(tmp_path)
    assert (meas.pcr0, meas.pcr1, meas.pcr2) == (unsigned.pcr0, unsigned.pcr1, unsigned.pcr2)


def test_describe_of_a_signed_eif(tmp_path, p384_identity):
    data, meas = make_eif(tmp_path, signing_key=SigningKey.from_pem(*p384_identity))
    info = inspect_eif(io.BytesIO(data))
    assert info.measurements == meas
    d = describe_json(info)
    assert d["IsSigned"] is True and d["SignatureCheck"] is True and d["CheckCRC"] is True
    assert d["Measurements"]["PCR8"] == meas.pcr8
    assert d["SigningCertificate"]["IssuerName"] == {"commonName": "eif-test", "countryName": "US"}
    assert d["SigningCertificate"]["Algorithm"] == "ecdsa-with-SHA384"
    assert list(d)[:6] == ["EifVersion", "Measurements", "IsSigned", "SigningCertificate", "CheckCRC", "SignatureCheck"]


def test_signature_over_another_pcr0_does_not_check(p384_identity):
    key = SigningKey.from_pem(*p384_identity)
    section = key.sign_pcr0(b"\x01" * 48)
    assert verify_signature_section(section, b"\x01" * 48)
    assert not verify_signature_section(section, b"\x02" * 48)


def test_tampered_cose_signature_fails(p384_identity):
    key = SigningKey.from_pem(*p384_identity)
    sig = decode_signature_section(key.sign_pcr0(b"\x01" * 48))[0].signature
    bad = bytearray(sig)
    bad[-1] ^= 1
    with pytest.raises(errors.SigningError) as ei:
        cose_verify(bytes(bad), key.private_key.public_key())
    assert ei.value.code is ErrorCode.SIGNATURE_INVALID


@pytest.mark.parametrize("curve,alg,hash_alg,size", [
    (ec.SECP256R1(), -7, hashes.SHA256(), 32),
    (ec.SECP384R1(), -35, hashes.SHA384(), 48),
    (ec.SECP521R1(), -36, hashes.SHA512(), 66),
])
def test_algorithm_follows_the_curve(curve, alg, hash_alg, size):
    cert, key_pem = make_cert(curve)
    key = SigningKey.from_pem(cert, key_pem)
    cose = cose_sign1(b"payload", key.private_key)
    assert _check_cose_independently(cose, cert, alg, hash_alg, size) == b"payload"
    assert cose_verify(cose, key.private_key.public_key()) == b"payload"


def test_key_must_match_the_certificate(p384_identity):
    _, other_key = make_cert()
    with pytest.raises(errors.SigningError) as ei:
        SigningKey.from_pem(p384_identity[0], other_key)
    assert ei.value.code is ErrorCode.KEY_CERT_MISMATCH


def test_non_ec_key_and_bad_certificate_are_refused(p384_identity):
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(errors.SigningError) as ei:
        SigningKey.from_pem(p384_identity[0], rsa_pem)
    assert ei.value.code is ErrorCode.BAD_KEY
    with pytest.raises(errors.SigningError) as ei:
        SigningKey.from_pem(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", p384_identity[1])
    assert ei.value.code is ErrorCode.BAD_CERTIFICATE


def test_sign_existing_eif_in_place_and_re_sign(tmp_path, p384_identity, capsys):
    from enclave_build import sign_eif
    from enclave_build.cli import main

    data, unsigned = make_eif(tmp_path)
    path = tmp_path / "app.eif"
    path.write_bytes(data)
    meas = sign_eif(path, path, SigningKey.from_pem(*p384_identity))
    o = eif_oracle.parse_eif(path.read_bytes())
    assert o["header"]["crc_ok"] and [s["type"] for s in o["sections"]][-1] == "signature"
    assert (meas.pcr0, meas.pcr1, meas.pcr2) == (unsigned.pcr0, unsigned.pcr1, unsigned.pcr2) and meas.pcr8
    # everything before the signature section is the unsigned file's, except the header
    assert path.read_bytes()[548 : len(data)] == data[548:]
    # re-signing with another identity replaces the signature (still one section, new PCR8)
    other = make_cert(cn="other")
    (tmp_path / "c.pem").write_bytes(other[0])
    (tmp_path / "k.pem").write_bytes(other[1])
    assert main(["sign", "--eif-path", str(path), "--signing-certificate", str(tmp_path / "c.pem"), "--private-key", str(tmp_path / "k.pem"),
                 "--output-file", str(tmp_path / "re.eif")]) == 0
    printed = __import__("json").loads(capsys.readouterr().out)["Measurements"]
    o2 = eif_oracle.parse_eif((tmp_path / "re.eif").read_bytes())
    assert [s["type"] for s in o2["sections"]].count("signature") == 1
    assert printed["PCR0"] == meas.pcr0 and printed["PCR8"] != meas.pcr8
    with open(tmp_path / "re.eif", "rb") as f:
        info = inspect_eif(f)
    assert describe_json(info)["SignatureCheck"] is True


def test_sign_refuses_a_corrupt_eif(tmp_path, p384_identity):
    from enclave_build import sign_eif

    data, _ = make_eif(tmp_path)
    bad = bytearray(data)
    bad[700] ^= 1
    (tmp_path / "bad.eif").write_bytes(bad)
    with pytest.raises(errors.CrcMismatch):
        sign_eif(tmp_path / "bad.eif", tmp_path / "signed.eif", SigningKey.from_pem(*p384_identity))
    assert not (tmp_path / "signed.eif").exists() and list(tmp_path.glob("signed.eif.*")) == []
