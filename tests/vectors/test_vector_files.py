"""Lint of the vector package (STYLE.md, Wycheproof: schema-valid, unique tcIds, exact counts).

Also: every file is known here (so a new file without a consuming test is noticed), every file
is named in PROVENANCE.md, and verbatim upstream copies still have their recorded SHA-256.
"""

from __future__ import annotations

import copy
import hashlib
import re
from importlib import resources

import pytest

import vectors

# Each file and the test module that consumes it.
EXPECTED = {
    "x25519_rfc7748": "test_x25519.py",
    "x25519_test": "test_x25519.py",
    "hkdf_sha256_rfc5869": "test_hkdf.py",
    "hkdf_sha256_test": "test_hkdf.py",
    "xchacha20_poly1305_draft03": "test_xchacha20_poly1305.py",
    "xchacha20_poly1305_test": "test_xchacha20_poly1305.py",
    "hchacha20_draft03": "test_xchacha20_poly1305.py",
    "envelope_kat": "test_envelope_kat.py",
    "envelope_invalid": "test_envelope_invalid.py",
    "kms_policy_audit": "../kms/test_audit.py",
    "evm_kat": "test_evm_kat.py",
    "ed25519_rfc8032": "test_ed25519.py",
    "solana_kat": "test_ed25519.py",
}


def _provenance() -> str:
    return resources.files(vectors).joinpath("PROVENANCE.md").read_text(encoding="utf-8")


def test_the_package_ships_exactly_the_expected_files():
    assert set(vectors.names()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_file_matches_its_schema_with_unique_ids_and_exact_count(name):
    data = vectors.load(name)  # validates against schema/<data["schema"]>
    ids = [t["tcId"] for g in data["testGroups"] for t in g["tests"]]
    assert len(ids) == len(set(ids)), f"duplicate tcIds in {name}"
    assert data["numberOfTests"] == len(ids)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_flag_is_described_in_notes(name):
    data = vectors.load(name)
    used = {f for g in data["testGroups"] for t in g["tests"] for f in t["flags"]}
    assert used <= set(data["notes"]), sorted(used - set(data["notes"]))


def test_every_file_and_schema_is_named_in_provenance():
    text = _provenance()
    listed = set(re.findall(r"`((?:schema/)?[\w.-]+\.json)`", text))
    shipped = {n + ".json" for n in vectors.names()} | {"schema/" + n for n in vectors.schema_names()}
    assert shipped <= listed, sorted(shipped - listed)


def test_verbatim_copies_are_unmodified():
    rows = re.findall(r"^\| `([\w/.-]+\.(?:json|xsd))` \|[^\n]*\| `([0-9a-f]{64})` \|$", _provenance(), re.M)
    assert len(rows) >= 7, "PROVENANCE.md lost its table of verbatim copies"
    root = resources.files(vectors)
    for path, digest in rows:
        data = root.joinpath(*path.split("/")).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, path


def test_every_schema_forbids_unknown_properties():
    import json

    root = resources.files(vectors).joinpath("schema")
    for name in vectors.schema_names():
        text = root.joinpath(name).read_text(encoding="utf-8")
        if name != "common.json":
            assert '"additionalProperties": false' in text, name
        json.loads(text)


def test_load_fails_loudly_on_a_missing_file():
    with pytest.raises(vectors.VectorError, match="missing"):
        vectors.load("no_such_vectors")


def test_validate_rejects_unknown_fields_bad_hex_and_bad_results():
    good = vectors.load("envelope_kat")
    vectors.validate(good)
    broken = []
    extra = copy.deepcopy(good)
    extra["testGroups"][0]["tests"][0]["surprise"] = 1
    broken.append(extra)
    upper = copy.deepcopy(good)
    upper["testGroups"][0]["tests"][0]["request"]["msg"] = "AB"
    broken.append(upper)
    result = copy.deepcopy(good)
    result["testGroups"][0]["tests"][0]["result"] = "maybe"
    broken.append(result)
    for data in broken:
        with pytest.raises(vectors.VectorError):
            vectors.validate(data)


def test_validate_fails_loudly_on_a_missing_schema():
    data = vectors.load("x25519_rfc7748")
    data["schema"] = "no_such_schema.json"
    with pytest.raises(vectors.VectorError, match="missing"):
        vectors.validate(data)
