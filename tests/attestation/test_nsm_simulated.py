"""The simulated NSM (spec 8.4): AWS-shaped documents, dev PKI, caps, and the strict verifier."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat

import pytest
from cryptography import x509

from harness.attestation import AttestationError, ErrorCode, Expectations, unsafe_decode_document, verify
from harness.attestation.codec import PAYLOAD_KEYS
from reference.enclave.nsm import (
    DEBUG_ZEROED,
    NsmConfigError,
    NsmInputTooLarge,
    NsmInvalidInput,
    SimulatedNsm,
)

from .conftest import REAL_DOCS

NOW = dt.datetime(2026, 11, 28, 1, 0, tzinfo=dt.timezone.utc)
PCRS = {0: bytes([0xA0]) * 48, 1: bytes([0xA1]) * 48, 2: bytes([0xA2]) * 48, 8: bytes([0xA8]) * 48}


class SeededRng:
    """Deterministic randomness for reproducible documents (SHA-256 counter stream)."""

    def __init__(self, seed: bytes):
        self.seed, self.counter = seed, 0

    def __call__(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(self.seed + self.counter.to_bytes(8, "big")).digest()
            self.counter += 1
        return out[:n]


@pytest.fixture
def nsm(tmp_path):
    return SimulatedNsm(tmp_path / "nsm", pcrs=PCRS, clock=lambda: NOW, rng=SeededRng(b"t"))


def test_documents_pass_the_strict_verifier_with_the_dev_root(nsm):
    doc = nsm.attest(b"commitment", b"challenge", b"K" * 32)
    v = verify(
        doc,
        roots=[nsm.root_pem()],
        at=NOW,
        expect=Expectations(pcrs=[PCRS], nonce=b"challenge", public_key=b"K" * 32, user_data=b"commitment"),
    )
    assert v.debug_mode is False and v.pcrs[0] == PCRS[0] and v.timestamp == NOW


def test_documents_fail_with_the_aws_root(nsm):
    with pytest.raises(AttestationError) as err:
        verify(nsm.attest(nonce=b"n"), at=NOW)  # default roots: AWS G1
    assert err.value.code is ErrorCode.CHAIN_ROOT_MISMATCH


def test_documents_are_byte_shaped_like_aws(nsm):
    doc = nsm.attest(nonce=b"n")
    decoded = unsafe_decode_document(doc)
    assert doc[0] == 0x84 and not decoded.cose.tagged
    assert doc[1:6] == bytes.fromhex("44a1013822") and doc[6] == 0xA0  # protected, then {}
    assert list(decoded.raw_payload_map) == list(PAYLOAD_KEYS)
    payload = decoded.cose.payload
    assert payload[0] == 0xA9  # map of 9
    ts = payload.index(b"itimestamp") + len(b"itimestamp")
    assert payload[ts] == 0x1B  # uint64 head
    assert decoded.payload.public_key is None and decoded.payload.user_data is None
    assert payload.endswith(b"\x69user_data\xf6\x65nonce\x41n")  # absent optional -> null
    assert sorted(decoded.payload.pcrs) == list(range(16))


def test_chain_mirrors_aws_shape_and_extensions(nsm):
    """Same levels, pathLens, extension sets and criticality as a real AWS chain."""

    def shape(certs):
        out = []
        for c in certs:
            exts = {e.oid.dotted_string: e.critical for e in c.extensions}
            bc = c.extensions.get_extension_for_class(x509.BasicConstraints).value
            ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
            out.append((exts, bc.ca, bc.path_length, ku.key_cert_sign, ku.digital_signature,
                        c.signature_algorithm_oid.dotted_string, c.public_key().curve.name))
        return out

    def chain(doc):
        p = unsafe_decode_document(doc).payload
        return [x509.load_der_x509_certificate(d) for d in (*p.cabundle, p.certificate)]

    real = next(d for d in REAL_DOCS if d.name.startswith("qos"))
    ours = chain(nsm.attest())
    assert shape(ours) == shape(chain(real.data))
    leaf = ours[-1]
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(hours=3)


def test_debug_mode_zeroes_pcr_0_1_2_8_and_needs_debug_allowed(tmp_path):
    nsm = SimulatedNsm(tmp_path, pcrs=PCRS | {3: bytes([3]) * 48}, debug=True, clock=lambda: NOW)
    doc = nsm.attest()
    p = unsafe_decode_document(doc).payload
    assert all(p.pcrs[i] == bytes(48) for i in DEBUG_ZEROED) and p.pcrs[3] == bytes([3]) * 48
    with pytest.raises(AttestationError) as err:
        verify(doc, roots=[nsm.root_pem()], at=NOW)
    assert err.value.code is ErrorCode.POLICY_DEBUG_MODE
    assert verify(doc, roots=[nsm.root_pem()], at=NOW, expect=Expectations(allow_debug=True)).debug_mode


def test_pki_is_created_once_persisted_and_root_published(tmp_path):
    a = SimulatedNsm(tmp_path, clock=lambda: NOW)
    b = SimulatedNsm(tmp_path, clock=lambda: NOW + dt.timedelta(hours=1))
    assert a.root_pem() == b.root_pem() == (tmp_path / "root.pem").read_bytes()
    assert stat.S_IMODE(os.stat(tmp_path / "root.key.pem").st_mode) == 0o600
    doc = b.attest()
    verify(doc, roots=[a.root_pem()], at=NOW + dt.timedelta(hours=1), expect=Expectations(allow_debug=True))


def test_expired_intermediates_are_reissued_from_the_same_root(tmp_path):
    nsm = SimulatedNsm(tmp_path, pcrs=PCRS, clock=lambda: NOW)
    first = unsafe_decode_document(nsm.attest()).payload.cabundle
    later = NOW + dt.timedelta(days=45)
    doc = nsm.attest(now=later)
    bundle = unsafe_decode_document(doc).payload.cabundle
    assert bundle[0] == first[0] and bundle[1:] != first[1:]
    verify(doc, roots=[nsm.root_pem()], at=later)


def test_same_clock_and_randomness_give_the_same_document(tmp_path):
    docs = [
        SimulatedNsm(tmp_path / str(i), pcrs=PCRS, clock=lambda: NOW, rng=SeededRng(b"same")).attest(nonce=b"x")
        for i in range(2)
    ]
    assert docs[0] == docs[1]
    other = SimulatedNsm(tmp_path / "o", pcrs=PCRS, clock=lambda: NOW, rng=SeededRng(b"other")).attest(nonce=b"x")
    assert other != docs[0]


def test_clock_is_used_when_no_time_is_given(tmp_path):
    times = iter([NOW, NOW + dt.timedelta(seconds=7)])
    nsm = SimulatedNsm(tmp_path, clock=lambda: next(times))
    assert unsafe_decode_document(nsm.attest()).payload.timestamp == int((NOW.timestamp() + 7) * 1000)


@pytest.mark.parametrize(
    "field, limit",
    [("user_data", 512), ("nonce", 512), ("public_key", 1024)],
)
def test_input_caps(nsm, field, limit):
    doc = nsm.attest(**{field: b"x" * limit})
    assert getattr(unsafe_decode_document(doc).payload, field) == b"x" * limit
    verify(doc, roots=[nsm.root_pem()], at=NOW)
    with pytest.raises(NsmInputTooLarge) as err:
        nsm.attest(**{field: b"x" * (limit + 1)})
    assert (err.value.field, err.value.limit, err.value.actual) == (field, limit, limit + 1)
    assert err.value.code.value == "nsm_input_too_large"


def test_empty_public_key_and_wrong_types_are_refused(nsm):
    with pytest.raises(NsmInvalidInput):
        nsm.attest(public_key=b"")
    with pytest.raises(NsmInvalidInput):
        nsm.attest(nonce="text")  # type: ignore[arg-type]
    assert unsafe_decode_document(nsm.attest(user_data=b"", nonce=b"")).payload.user_data == b""


@pytest.mark.parametrize("pcrs", [{32: bytes(48)}, {-1: bytes(48)}, {0: bytes(32)}, {"0": bytes(48)}])
def test_impossible_pcrs_are_refused(tmp_path, pcrs):
    with pytest.raises(NsmConfigError):
        SimulatedNsm(tmp_path, pcrs=pcrs, clock=lambda: NOW)


def test_leaf_is_reissued_before_it_gets_old(nsm):
    leaf = lambda doc: unsafe_decode_document(doc).payload.certificate
    a = nsm.attest(now=NOW)
    b = nsm.attest(now=NOW + dt.timedelta(minutes=30))
    c = nsm.attest(now=NOW + dt.timedelta(hours=2))
    assert leaf(a) == leaf(b) != leaf(c)
    verify(c, roots=[nsm.root_pem()], at=NOW + dt.timedelta(hours=2))
