"""Verifier strictness found by review (issue 8, item 6): RFC 5280 rules on every certificate,
and the claim of spec 8.6.5 that path validation changes no verdict, over every mutant of 8.7."""

from __future__ import annotations

import datetime as dt

import pytest

from harness.attestation import AttestationError, ErrorCode, mutate, verify

NOW = dt.datetime(2026, 11, 28, 1, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def mutants():
    return {m.id: m for m in mutate.generate(NOW)}


def _code(m, **kw):
    try:
        verify(m.document, roots=list(m.roots), at=m.at, expect=m.expect, **kw)
    except AttestationError as err:
        return err.code
    return None


@pytest.mark.parametrize("mutant_id, code", [
    ("certificates/sigalg/leaf-inner-sha256-outer-sha384", ErrorCode.CERT_SIGNATURE_ALGORITHM),
    ("certificates/sigalg/instance-inner-sha512-outer-sha384", ErrorCode.CERT_SIGNATURE_ALGORITHM),
    ("certificates/serial/leaf-zero", ErrorCode.CERT_SERIAL),
    ("certificates/serial/leaf-negative", ErrorCode.CERT_SERIAL),
    ("certificates/serial/leaf-21-octets", ErrorCode.CERT_SERIAL),
    ("certificates/serial/instance-21-octets", ErrorCode.CERT_SERIAL),
    ("certificates/serial/leaf-20-octets", None),
    ("certificates/subject/instance-ca-empty", ErrorCode.CERT_CA_SUBJECT),
    ("certificates/leaf/keycertsign-and-digital-signature", ErrorCode.CERT_LEAF_KEY_USAGE),
])
@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_each_rfc5280_rule_refuses_its_mutant(mutants, mutant_id, code):
    assert _code(mutants[mutant_id]) is code


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_path_validation_mode_agrees_with_the_default_on_every_mutant(mutants):
    """Spec 8.6.5: path validation is a second opinion that changes no verdict, in any layer."""
    assert len(mutants) >= 500
    disagreements = []
    for m in mutants.values():
        default, validated = _code(m), _code(m, path_validation=True)
        if default is not m.expected or validated is not default:
            disagreements.append(f"{m.id}: expected {m.expected}, default {default}, path validation {validated}")
    assert disagreements == []
