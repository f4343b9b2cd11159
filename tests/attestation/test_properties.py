"""Property tests (Hypothesis) of the codec and verifier (spec 8.3, 8.6, 8.7)."""

from __future__ import annotations

import datetime as dt

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.attestation import (
    AttestationError,
    AttestationPayload,
    ErrorCode,
    Expectations,
    encode_payload,
    mutate,
    unsafe_decode_document,
    unsafe_decode_payload,
    verify,
)

NOW = dt.datetime(2026, 11, 28, 1, 0, tzinfo=dt.timezone.utc)
BASE = mutate.make_base(NOW)
ROOTS = [BASE.pki.root_pem]
RELAXED = Expectations(allow_debug=True, max_age=None)
GOOD = BASE.sign(BASE.payload())
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1) | st.binary(max_size=64) | st.text(max_size=16)
    | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.integers(-5, 40) | st.text(max_size=12), inner,
                                                                 max_size=10),
    max_leaves=30,
)


def _only_attestation_errors(document: bytes) -> None:
    try:
        verify(document, roots=ROOTS, at=NOW, expect=RELAXED)
    except AttestationError:
        pass


@FAST
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_attestation_error(data):
    _only_attestation_errors(data)


@FAST
@given(cbor_values)
def test_arbitrary_cbor_documents_raise_only_attestation_error(value):
    _only_attestation_errors(cbor2.dumps(value))


@FAST
@given(cbor_values)
def test_arbitrary_signed_payloads_raise_only_attestation_error(value):
    """Re-signed with the test leaf, so every payload reaches the field checks."""
    _only_attestation_errors(BASE.sign(cbor2.dumps(value)))


@FAST
@given(st.integers(0, len(GOOD) - 1), st.integers(1, 255))
def test_any_single_byte_change_is_rejected(pos, delta):
    mutated = bytearray(GOOD)
    mutated[pos] = (mutated[pos] + delta) % 256
    try:
        verify(bytes(mutated), roots=ROOTS, at=NOW, expect=RELAXED)
    except AttestationError:
        return
    raise AssertionError(f"byte {pos} changed by {delta} was accepted")


@FAST
@given(st.sampled_from(["public_key", "user_data", "nonce"]), st.integers(0, 1100))
def test_optional_field_sizes_follow_the_spec_table(name, n):
    lo, hi = {"public_key": (1, 1024), "user_data": (0, 512), "nonce": (0, 512)}[name]
    doc = BASE.sign(BASE.payload(BASE.fields(), **{name: mutate.bstr(b"a" * n)}))
    try:
        verify(doc, roots=ROOTS, at=NOW, expect=RELAXED)
    except AttestationError as err:
        assert not lo <= n <= hi, (name, n, err)
        assert err.code.value == "field-" + name.replace("_", "-")
    else:
        assert lo <= n <= hi, (name, n)


@FAST
@given(st.integers(-40, 300), st.integers(0, 100))
def test_pcr_index_and_length_rules(index, length):
    pcrs = {**BASE.pcrs, index: b"\x07" * length}
    doc = BASE.sign(BASE.payload(BASE.fields(), pcrs=cbor2.dumps(pcrs)))
    try:
        verify(doc, roots=ROOTS, at=NOW, expect=Expectations(max_age=None))
    except AttestationError as err:
        if not 0 <= index <= 31:
            assert err.code is ErrorCode.FIELD_PCR_INDEX
        elif length not in (32, 48, 64):
            assert err.code is ErrorCode.FIELD_PCR_LENGTH
        else:
            raise
    else:
        assert 0 <= index <= 31 and length in (32, 48, 64)


payloads = st.builds(
    AttestationPayload,
    module_id=st.text(min_size=1, max_size=40),
    digest=st.just("SHA384"),
    timestamp=st.integers(1, 2**64 - 1),
    pcrs=st.dictionaries(st.integers(0, 31), st.sampled_from([32, 48, 64]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
                         min_size=1, max_size=32),
    certificate=st.binary(min_size=1, max_size=1024),
    cabundle=st.lists(st.binary(min_size=1, max_size=1024), min_size=1, max_size=4).map(tuple),
    public_key=st.none() | st.binary(min_size=1, max_size=1024),
    user_data=st.none() | st.binary(max_size=512),
    nonce=st.none() | st.binary(max_size=512),
)


@FAST
@given(payloads)
def test_encode_then_decode_is_identity(p):
    encoded = encode_payload(p)
    decoded, _ = unsafe_decode_payload(encoded)
    assert decoded == AttestationPayload(**{**p.__dict__, "pcrs": dict(sorted(p.pcrs.items()))})
    ts = encoded.index(b"itimestamp") + len(b"itimestamp")
    assert encoded[ts] == 0x1B  # always the uint64 form, as AWS writes it


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=512), st.binary(max_size=512), st.binary(min_size=1, max_size=1024))
def test_signed_documents_verify_with_matching_expectations(user_data, nonce, public_key):
    fields = BASE.fields()
    doc = BASE.sign(BASE.payload(fields, user_data=mutate.bstr(user_data), nonce=mutate.bstr(nonce),
                                 public_key=mutate.bstr(public_key)))
    v = verify(doc, roots=ROOTS, at=NOW, expect=BASE.expect(user_data=user_data, nonce=nonce, public_key=public_key))
    assert (v.user_data, v.nonce, v.public_key) == (user_data, nonce, public_key)
    assert unsafe_decode_document(doc).payload.nonce == nonce
