"""The `kms/*` checks (harness/suites/kms.py, spec §11.6) against a fake Vault that misbehaves in
one named way at a time (tests/kms/fake_key_policy_vault.py): each check passes on the honest
Vault and fails on exactly the faults it exists for."""

from __future__ import annotations

import pytest

from harness.protocol.client import VaultClient
from harness.suites import kms
from harness.suites.registry import CheckFailed, CheckUnimplemented, Context, all_checks

from .fake_key_policy_vault import FakeVault

CHECKS = {
    "kms/key-policy-digest": kms.key_policy_digest,
    "kms/key-policy-attested": kms.key_policy_attested,
    "kms/key-policy-restricts-to-attested-pcrs": kms.key_policy_restricts,
}
# mode -> the checks that must fail against it (all others must pass)
FAILS = {
    "good": set(),
    "wrong-digest": {"kms/key-policy-digest"},
    "substituted": {"kms/key-policy-attested", "kms/key-policy-restricts-to-attested-pcrs"},
    "other-hash": {"kms/key-policy-attested", "kms/key-policy-restricts-to-attested-pcrs"},
    "hole": {"kms/key-policy-restricts-to-attested-pcrs"},
    "no-document": {"kms/key-policy-attested", "kms/key-policy-restricts-to-attested-pcrs"},
}


def run(vault: FakeVault, check, **options) -> Exception | None:
    client = VaultClient(vault.url)
    ctx = Context(vault.url, client, {"attestation_roots": [vault.pki.root_pem], **options})
    try:
        check(ctx)
    except (CheckFailed, CheckUnimplemented) as outcome:
        return outcome
    finally:
        client.close()
    return None


def test_checks_are_registered_in_the_kms_profile():
    registered = {c.id: c for c in all_checks() if c.area == "kms"}
    assert set(registered) == set(CHECKS)
    assert {c.profile for c in registered.values()} == {"kms"}
    assert all(c.level.value == "MUST" for c in registered.values())


@pytest.mark.parametrize("mode", sorted(FAILS))
def test_each_check_fails_on_its_fault_and_only_there(mode):
    with FakeVault(mode) as vault:
        outcomes = {name: run(vault, check) for name, check in CHECKS.items()}
    failed = {name for name, outcome in outcomes.items() if isinstance(outcome, CheckFailed)}
    assert failed == FAILS[mode], {n: str(o) for n, o in outcomes.items()}
    assert not any(isinstance(o, CheckUnimplemented) for o in outcomes.values())


def test_failure_messages_say_why():
    with FakeVault("wrong-digest") as vault:
        assert "policySha384 is not the SHA-384" in str(run(vault, kms.key_policy_digest))
    with FakeVault("other-hash") as vault:
        outcome = run(vault, kms.key_policy_attested)
        assert isinstance(outcome, CheckFailed) and "user_data" in str(outcome).lower()
    with FakeVault("hole") as vault:
        outcome = run(vault, kms.key_policy_restricts)
        assert "unattested-wildcard-allow" in " ".join(outcome.actual)


def test_wrong_root_fails_the_attested_check():
    with FakeVault("good") as vault, FakeVault("good") as stranger:
        outcome = run(vault, kms.key_policy_attested, attestation_roots=[stranger.pki.root_pem])
    assert isinstance(outcome, CheckFailed)


def test_expected_pcrs_are_enforced_when_given():
    with FakeVault("good") as vault:
        assert run(vault, kms.key_policy_attested, expected_pcrs=[{0: b"\x11" * 48}]) is not None
        from .fake_key_policy_vault import PCRS
        assert run(vault, kms.key_policy_attested, expected_pcrs=[{0: PCRS[0]}]) is None


def test_unknown_operation_is_unimplemented():
    with FakeVault("unknown") as vault:
        for check in CHECKS.values():
            assert isinstance(run(vault, check), CheckUnimplemented)


def test_user_data_commitment_is_the_documented_one():
    import hashlib

    arn, policy = "arn:aws:kms:eu-west-1:1:key/k", '{"Version":"2012-10-17"}'
    expected = hashlib.sha384(b"vault-reference/key-policy/v1\x00" + arn.encode() + b"\x00"
                              + hashlib.sha384(policy.encode()).digest()).digest()
    assert kms.key_policy_user_data(arn, policy) == expected and len(expected) == 48


@pytest.mark.parametrize("mode, status", [("good", 0), ("hole", 1), ("unknown", 1)])
def test_a_kms_profile_run_gates_on_the_checks(mode, status, tmp_path, capsys):
    from harness import cli

    with FakeVault(mode) as vault:
        root = tmp_path / "root.pem"
        root.write_bytes(vault.pki.root_pem)
        assert cli.main(["run", "--target", vault.url, "--profile", "kms", "--attestation-root", str(root)]) == status
    out = capsys.readouterr().out
    assert all(name in out for name in CHECKS)
