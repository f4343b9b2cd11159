"""Known answers: five real AWS-signed documents (spec 8.6) decode, verify, and break when touched."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from harness.attestation import (
    AWS_NITRO_ROOT_G1_SHA256,
    AttestationError,
    ErrorCode,
    Expectations,
    encode_payload,
    unsafe_decode_document,
    verify,
)
from harness.attestation.codec import PAYLOAD_KEYS

SECOND = dt.timedelta(seconds=1)
# Window tests look at certificate validity alone: freshness is off, debug documents allowed.
NO_FRESHNESS = Expectations(allow_debug=True, max_age=None, max_future=dt.timedelta(days=1))


def _expect_for(doc) -> Expectations:
    e = doc.entry
    return Expectations(
        allow_debug=e["debug_mode"],
        pcrs=[{int(i): bytes.fromhex(v) for i, v in e["pcrs"].items()}],
        nonce=bytes.fromhex(e["nonce_hex"]) if e["nonce_hex"] else None,
        user_data=bytes.fromhex(e["user_data_hex"]) if e["user_data_hex"] else None,
    )


def test_embedded_root_matches_the_vector(aws_root_pem):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificate(aws_root_pem).public_bytes(Encoding.DER)
    assert hashlib.sha256(der).hexdigest() == AWS_NITRO_ROOT_G1_SHA256


def test_decodes_every_manifest_field(real_doc):
    decoded = unsafe_decode_document(real_doc.data)
    p, e = decoded.payload, real_doc.entry
    assert not decoded.cose.tagged and real_doc.data[0] == 0x84
    assert p.module_id == e["module_id"]
    assert p.timestamp == e["timestamp_ms"]
    assert {i: v.hex() for i, v in p.pcrs.items() if str(i) in e["pcrs"]} == {int(i): v for i, v in e["pcrs"].items()}
    assert (p.nonce.hex() if p.nonce is not None else None) == e["nonce_hex"]
    assert (p.user_data.hex() if p.user_data is not None else None) == e["user_data_hex"]
    assert (len(p.public_key) if p.public_key is not None else None) == e["public_key_len"]
    assert len(p.cabundle) == e["cabundle_len"]


def test_encoder_reproduces_aws_payload_bytes(real_doc):
    """Our encoder's shape is AWS's: re-encoding the decoded payload gives the same bytes."""
    decoded = unsafe_decode_document(real_doc.data)
    assert encode_payload(decoded.payload) == decoded.cose.payload
    assert list(decoded.raw_payload_map) == list(PAYLOAD_KEYS)


def test_verifies_with_full_policy_at_its_timestamp(real_doc):
    v = verify(real_doc.data, at=real_doc.at, expect=_expect_for(real_doc))
    assert v.root_sha256 == AWS_NITRO_ROOT_G1_SHA256
    assert v.debug_mode is real_doc.entry["debug_mode"]
    assert v.module_id == real_doc.entry["module_id"]
    assert len(v.chain) == 5


def test_rfc5280_path_validation_agrees(real_doc):
    v = verify(real_doc.data, at=real_doc.at, expect=_expect_for(real_doc), path_validation=True)
    assert v.root_sha256 == AWS_NITRO_ROOT_G1_SHA256


def test_verifies_at_both_ends_of_its_window(real_doc):
    start, end = real_doc.window()
    verify(real_doc.data, at=start, expect=NO_FRESHNESS)
    verify(real_doc.data, at=end, expect=NO_FRESHNESS)


def test_rejected_one_second_before_its_window(real_doc):
    start, _ = real_doc.window()
    with pytest.raises(AttestationError) as err:
        verify(real_doc.data, at=start - SECOND, expect=NO_FRESHNESS)
    assert err.value.code is ErrorCode.CERT_NOT_YET_VALID


def test_rejected_one_second_after_its_window(real_doc):
    _, end = real_doc.window()
    with pytest.raises(AttestationError) as err:
        verify(real_doc.data, at=end + SECOND, expect=NO_FRESHNESS)
    assert err.value.code is ErrorCode.CERT_EXPIRED


def test_debug_documents_need_debug_allowed(real_doc):
    if not real_doc.entry["debug_mode"]:
        verify(real_doc.data, at=real_doc.at, expect=Expectations(allow_debug=False))
        return
    with pytest.raises(AttestationError) as err:
        verify(real_doc.data, at=real_doc.at, expect=Expectations(allow_debug=False))
    assert err.value.code is ErrorCode.POLICY_DEBUG_MODE


def test_rejected_with_a_different_pinned_root(real_doc):
    from harness.attestation.testpki import TestPki

    with pytest.raises(AttestationError) as err:
        verify(real_doc.data, roots=[TestPki.generate().root_pem], at=real_doc.at, expect=NO_FRESHNESS)
    assert err.value.code is ErrorCode.CHAIN_ROOT_MISMATCH


def _layout(data: bytes):
    """Offsets of the payload and the signature inside the document bytes."""
    d = unsafe_decode_document(data)
    pay_at = data.index(d.cose.payload)
    sig_at = len(data) - 96
    assert data[sig_at:] == d.cose.signature
    return pay_at, len(d.cose.payload), sig_at


def _flip(data: bytes, i: int, mask: int) -> bytes:
    return data[:i] + bytes([data[i] ^ mask]) + data[i + 1 :]


def test_every_signature_byte_changed_is_rejected(real_doc):
    doc = real_doc
    _, _, sig_at = _layout(doc.data)
    for i in range(sig_at, sig_at + 96):
        for mask in (0x01, 0x80):
            with pytest.raises(AttestationError) as err:
                verify(_flip(doc.data, i, mask), at=doc.at, expect=NO_FRESHNESS)
            assert err.value.code is ErrorCode.COSE_SIGNATURE, (i, mask)


def _check_payload_bytes(doc, offsets):
    codes = set()
    for i in offsets:
        with pytest.raises(AttestationError) as err:
            verify(_flip(doc.data, i, 0x01), at=doc.at, expect=NO_FRESHNESS)
        codes.add(err.value.code)
    return codes


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_envelope_and_sampled_payload_bytes_changed_are_rejected(real_doc):
    doc = real_doc
    pay_at, pay_len, sig_at = _layout(doc.data)
    # every envelope byte outside payload and signature, and every 7th payload byte
    # (this covers each certificate of the chain and every payload field)
    offsets = [i for i in range(len(doc.data)) if i < pay_at or pay_at + pay_len <= i < sig_at]
    offsets += list(range(pay_at, pay_at + pay_len, 7))
    codes = _check_payload_bytes(doc, offsets)
    assert ErrorCode.COSE_SIGNATURE in codes  # plain field bytes are caught by the signature


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_every_payload_byte_changed_is_rejected(real_doc):
    doc = real_doc
    pay_at, pay_len, _ = _layout(doc.data)
    _check_payload_bytes(doc, range(pay_at, pay_at + pay_len))
