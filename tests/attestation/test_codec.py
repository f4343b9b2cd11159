"""Codec and error-model details (spec 8.2, 8.3, 8.6.1) not covered by the mutants."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import cbor2
import pytest

from harness.attestation import (
    AttestationError,
    AttestationPayload,
    ErrorCode,
    encode_cose_sign1,
    encode_payload,
    mutate,
    unsafe_decode_cose_sign1,
    unsafe_decode_payload,
    verify,
)
from harness.attestation.fuzz_target import check_one, seeds

NOW = dt.datetime(2026, 11, 28, 1, 0, tzinfo=dt.timezone.utc)


def _payload(**kw) -> AttestationPayload:
    base = dict(module_id="m", digest="SHA384", timestamp=5, pcrs={0: bytes(48)}, certificate=b"c", cabundle=(b"r",))
    return AttestationPayload(**{**base, **kw})


def test_small_timestamps_still_use_the_uint64_head():
    encoded = encode_payload(_payload(timestamp=5))
    assert b"itimestamp\x1b\x00\x00\x00\x00\x00\x00\x00\x05" in encoded
    assert unsafe_decode_payload(encoded)[0].timestamp == 5


def test_absent_optionals_are_encoded_as_null_in_order():
    encoded = encode_payload(_payload())
    assert encoded.endswith(b"\x6apublic_key\xf6\x69user_data\xf6\x65nonce\xf6")
    assert list(cbor2.loads(encoded)) == ["module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle",
                                          "public_key", "user_data", "nonce"]


def test_cbor2_alone_would_accept_what_we_reject():
    """The reason for the strict decoder: cbor2.loads keeps the last duplicate and ignores tails."""
    dup = bytes.fromhex("a2") + cbor2.dumps("a") + b"\x01" + cbor2.dumps("a") + b"\x02"
    assert cbor2.loads(dup) == {"a": 2}
    assert cbor2.loads(b"\x80\x00") == []
    assert cbor2.loads(b"\xc2\x41\x01") == 1  # a bignum tag silently becomes an int
    with pytest.raises(AttestationError) as err:
        unsafe_decode_payload(dup)
    assert err.value.code is ErrorCode.CBOR_DUPLICATE_KEY
    with pytest.raises(AttestationError) as err:
        unsafe_decode_cose_sign1(b"\x80\x00")
    assert err.value.code is ErrorCode.CBOR_TRAILING_BYTES


def test_tag_18_is_recorded_and_accepted():
    base = mutate.make_base(NOW)
    doc = base.sign(base.payload())
    assert unsafe_decode_cose_sign1(b"\xd2" + doc).tagged is True
    assert unsafe_decode_cose_sign1(doc).tagged is False
    cose = unsafe_decode_cose_sign1(doc)
    tagged = encode_cose_sign1(cose.protected, cose.payload, cose.signature, tagged=True)
    assert tagged == b"\xd2" + doc
    verify(tagged, roots=[base.pki.root_pem], at=NOW, expect=base.expect())


def test_errors_carry_code_expected_and_actual():
    with pytest.raises(AttestationError) as err:
        unsafe_decode_cose_sign1(cbor2.dumps([b"\xa1\x01\x38\x22", {}, b"p", b"s" * 95]))
    e = err.value
    assert (e.code, e.expected, e.actual) == (ErrorCode.COSE_SIGNATURE_LENGTH, 96, 95)
    assert "cose-signature-length" in str(e) and "expected=96" in repr(e)


def test_verification_time_must_be_timezone_aware():
    with pytest.raises(TypeError):
        verify(b"", at=dt.datetime(2026, 1, 1))


def test_error_codes_are_unique_and_listed_in_the_spec():
    values = [c.value for c in ErrorCode]
    assert len(values) == len(set(values))
    text = (Path(__file__).resolve().parents[2] / "docs" / "spec" / "08-attestation.md").read_text()
    listed = set(re.findall(r"`([a-z0-9-]+)`", text))
    assert set(values) <= listed, sorted(set(values) - listed)


def test_fuzz_target_accepts_its_seeds_without_crashing():
    for s in seeds()[:60]:
        check_one(s)
        check_one(s[:1] + s[2:])
