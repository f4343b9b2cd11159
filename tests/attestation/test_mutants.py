"""The mutation suite (spec 8.7): every mutant gets the verdict it was built for."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from harness.attestation import ErrorCode, mutate

NOW = dt.datetime(2026, 11, 28, 1, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def outcomes():
    return mutate.run(mutate.generate(NOW))


def _mismatches(outcomes, layer=None):
    return [
        f"{o.mutant.id}: expected {o.mutant.expected}, got {o.actual} ({o.verdict}) {o.detail}"
        for o in outcomes
        if o.verdict != "ok" and (layer is None or o.mutant.layer == layer)
    ]


@pytest.mark.parametrize("layer", mutate.LAYERS)
def test_every_mutant_of_the_layer_gets_its_expected_verdict(outcomes, layer):
    mine = [o for o in outcomes if o.mutant.layer == layer]
    assert len(mine) >= 30
    assert _mismatches(outcomes, layer) == []


def test_at_least_500_distinct_mutants_all_rejected_by_the_named_check(outcomes):
    rejecting = [o for o in outcomes if o.mutant.expected is not None]
    assert len({o.mutant.id for o in outcomes}) == len(outcomes)
    assert len({o.mutant.document for o in rejecting}) >= 500
    assert all(o.actual is o.mutant.expected for o in rejecting)


def test_every_named_check_is_aimed_at_by_some_mutant(outcomes):
    aimed = {o.mutant.expected for o in outcomes if o.mutant.expected}
    # chain-path-validation is the backstop behind the named chain checks: nothing reaches it
    # that a named check does not catch first.
    assert set(ErrorCode) - aimed == {ErrorCode.CHAIN_PATH_VALIDATION}


def test_rfc5280_path_validation_agrees_on_every_certificate_mutant(outcomes):
    from harness.attestation import AttestationError, verify

    for o in outcomes:
        m = o.mutant
        if m.layer != "certificates":
            continue
        try:
            verify(m.document, roots=list(m.roots), at=m.at, expect=m.expect, path_validation=True)
        except AttestationError as err:
            assert err.code is m.expected, m.id
        else:
            assert m.expected is None, m.id


def test_valid_mutants_exist_at_every_boundary(outcomes):
    valid = {o.mutant.id for o in outcomes if o.mutant.expected is None}
    for needed in ("envelope/signature/high-s", "envelope/tag/18-one-byte", "envelope/payload-size/16384",
                   "payload/size/user_data-512", "payload/size/nonce-512", "payload/size/public_key-1024",
                   "payload/pcr-index/31", "certificates/validity-edge/leaf-ends-now", "semantics/stale/window-edge"):
        assert needed in valid


def test_the_runner_flags_wrong_verdicts():
    base = mutate.make_base(NOW)
    good = mutate.envelope_mutants(base)[0]
    assert good.id == "envelope/control/valid" and mutate.run_one(good).verdict == "ok"
    assert mutate.run_one(replace(good, expected=ErrorCode.COSE_SIGNATURE)).verdict == "wrongly-accepted"
    bad = replace(good, document=good.document[:-1] + bytes([good.document[-1] ^ 1]))
    assert mutate.run_one(bad).verdict == "wrongly-rejected"
    assert mutate.run_one(replace(bad, expected=ErrorCode.POLICY_NONCE)).verdict == "wrong-check"
    assert mutate.run_one(replace(bad, expected=ErrorCode.COSE_SIGNATURE)).verdict == "ok"
    assert mutate.run_one(replace(good, at=NOW.replace(tzinfo=None))).verdict == "crash"  # TypeError


def test_cli_reports_counts_and_exits_zero(capsys):
    assert mutate.main(["--layer", "semantics"]) == 0
    out = capsys.readouterr().out
    assert "wrongly-accepted=0" in out and "wrong-check=0" in out and "semantics" in out
