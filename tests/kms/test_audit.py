"""The key-policy audit (harness/kms/audit.py, spec §11.5): the vector table, PCR inputs, the CLI.

Every case of vectors/kms_policy_audit.json must produce exactly its expected finding codes; the
malformed group must be refused with AuditError. The CLI runs as a subprocess so exit codes and
the absence of tracebacks are what a user sees.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import vectors
from harness.kms.audit import AuditError, FindingCode, audit_policy, normalise_pcrs, read_pcrs_file

from ..vectors._support import cases

AUDIT_CASES = cases("kms_policy_audit", group_type="KmsPolicyAuditTest")
MALFORMED_CASES = cases("kms_policy_audit", group_type="KmsPolicyMalformedTest")
REPO = Path(__file__).resolve().parents[2]

PCR0 = hashlib.sha384(b"the attested image").hexdigest()
# KMS.md §2's locked policy, byte for byte, with its "<96 hex>" placeholder filled in.
LOCKED = """{"Version":"2012-10-17","Statement":[
 {"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/admin"},
  "Action":["kms:Create*","kms:Describe*","kms:Get*","kms:List*","kms:Put*"],"Resource":"*"},
 {"Sid":"EnclaveOnly","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/enclave-parent"},
  "Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"*",
  "Condition":{"StringEqualsIgnoreCase":{"kms:RecipientAttestation:PCR0":"<96 hex>"}}}]}""".replace("<96 hex>", PCR0)


@pytest.mark.parametrize("group, test", AUDIT_CASES)
def test_vector_findings(group, test):
    findings = audit_policy(json.dumps(test["policy"]), attested_pcrs=test["pcrs"],
                            enclave_principals=test.get("enclavePrincipals"))
    assert sorted({f.code.value for f in findings}) == sorted(test["expectedFindings"]), \
        [str(f) for f in findings]
    assert all(isinstance(f.code, FindingCode) and f.message for f in findings)


@pytest.mark.parametrize("group, test", MALFORMED_CASES)
def test_malformed_policies_are_refused(group, test):
    with pytest.raises(AuditError, match="malformed policy"):
        audit_policy(test["policyText"], attested_pcrs=test["pcrs"])


def test_the_table_covers_every_finding_code():
    data = vectors.load("kms_policy_audit")
    used = {code for g in data["testGroups"] for t in g["tests"] for code in t.get("expectedFindings", [])}
    assert used == {c.value for c in FindingCode}
    assert sum(len(g["tests"]) for g in data["testGroups"] if g["type"] == "KmsPolicyAuditTest") >= 15


def test_locked_policy_of_kms_md_passes_with_every_pcr_form():
    raw = bytes.fromhex(PCR0)
    for pcrs in ({0: raw}, {"0": PCR0}, {"PCR0": PCR0.upper()}, {0: raw, 1: hashlib.sha384(b"k").digest()}):
        assert audit_policy(LOCKED, attested_pcrs=pcrs) == []
    assert audit_policy(LOCKED.encode(), attested_pcrs={0: raw}) == []


def test_locked_policy_fails_against_another_image():
    other = hashlib.sha384(b"another image").hexdigest()
    codes = {f.code for f in audit_policy(LOCKED, attested_pcrs={0: other})}
    assert codes == {FindingCode.PCR_VALUE_MISMATCH, FindingCode.NO_ATTESTED_ACCESS}


def test_findings_name_their_statement():
    policy = json.loads(LOCKED)
    policy["Statement"].append({"Sid": "Grants", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/enclave-parent"},
                                "Action": "kms:CreateGrant", "Resource": "*"})
    policy["Statement"].append({"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "kms:Decrypt",
                                "Resource": "*"})
    findings = audit_policy(json.dumps(policy), attested_pcrs={0: PCR0})
    by_code = {f.code: f for f in findings}
    assert set(by_code) == {FindingCode.GRANT_BYPASS, FindingCode.UNATTESTED_ALLOW}
    assert (by_code[FindingCode.GRANT_BYPASS].index, by_code[FindingCode.GRANT_BYPASS].sid) == (2, "Grants")
    assert (by_code[FindingCode.UNATTESTED_ALLOW].index, by_code[FindingCode.UNATTESTED_ALLOW].sid) == (3, None)
    assert "account 111122223333" in by_code[FindingCode.UNATTESTED_ALLOW].message
    assert by_code[FindingCode.GRANT_BYPASS].to_json()["statementIndex"] == 2


def test_explicit_enclave_principals_widen_the_bypass_check():
    policy = json.loads(LOCKED)
    policy["Statement"].append({"Sid": "Ops", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/ops"},
                                "Action": "kms:CreateGrant", "Resource": "*"})
    text = json.dumps(policy)
    assert audit_policy(text, attested_pcrs={0: PCR0}) == []  # ops is not the enclave's role...
    given = ["arn:aws:iam::111122223333:role/ops", "arn:aws:iam::111122223333:role/enclave-parent"]
    codes = {f.code for f in audit_policy(text, attested_pcrs={0: PCR0}, enclave_principals=given)}
    assert codes == {FindingCode.GRANT_BYPASS}  # ...unless the caller says it is


@pytest.mark.parametrize("pcrs", [{}, {32: PCR0}, {"x": PCR0}, {0: "zz" * 48}, {0: b"\x00" * 20}, {0: 7}, [PCR0]])
def test_bad_pcrs_are_audit_errors(pcrs):
    with pytest.raises(AuditError):
        audit_policy(LOCKED, attested_pcrs=pcrs)


def test_pcr_files_in_nitro_cli_shapes():
    describe_eif = {"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": PCR0, "PCR1": PCR0, "PCR2": PCR0}}
    assert read_pcrs_file(json.dumps(describe_eif)) == {0: PCR0, 1: PCR0, 2: PCR0}
    describe_enclaves = [{"EnclaveID": "i-0-enc0", "Measurements": {"PCR0": PCR0.upper()}}]
    assert read_pcrs_file(json.dumps(describe_enclaves)) == {0: PCR0}
    assert read_pcrs_file(json.dumps({"PCR8": PCR0})) == {8: PCR0}
    for bad in ("[", "[]", json.dumps([describe_eif, describe_eif]), "{}", json.dumps({"Measurements": {"PCR0": "abc"}})):
        with pytest.raises(AuditError):
            read_pcrs_file(bad)
    assert normalise_pcrs({"pcr2": PCR0}) == {2: PCR0}


# --- the CLI ---------------------------------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.kms.audit", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def files(tmp_path):
    locked = tmp_path / "locked.json"
    locked.write_text(LOCKED)
    default = tmp_path / "default.json"
    default.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]}))
    describe = tmp_path / "describe.json"
    describe.write_text(json.dumps({"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": PCR0}}))
    return {"locked": str(locked), "default": str(default), "describe": str(describe), "dir": tmp_path}


def test_cli_exit_0_for_a_locked_policy(files):
    result = run_cli(files["locked"], "--pcrs", files["describe"])
    assert result.returncode == 0, result.stderr
    assert "0 finding(s)" in result.stdout
    result = run_cli(files["locked"], "--pcr", f"0={PCR0}", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["findings"] == []


def test_cli_exit_1_lists_the_findings(files):
    result = run_cli(files["default"], "--pcr", f"0={PCR0}")
    assert result.returncode == 1
    assert "unattested-wildcard-allow: statement 0" in result.stdout and "grant-bypass" in result.stdout
    result = run_cli(files["default"], "--pcrs", files["describe"], "--json")
    assert result.returncode == 1
    codes = {f["code"] for f in json.loads(result.stdout)["findings"]}
    assert codes == {"unattested-wildcard-allow", "grant-bypass"}


def test_cli_exit_2_bad_usage_one_line_no_traceback(files):
    tmp = files["dir"]
    (tmp / "bad.json").write_text("{not json")
    (tmp / "bin.json").write_bytes(b"\xff\xfe\x00")
    attempts = [
        (str(tmp / "missing.json"), "--pcr", f"0={PCR0}"),
        (str(tmp / "bad.json"), "--pcr", f"0={PCR0}"),
        (str(tmp / "bin.json"), "--pcr", f"0={PCR0}"),
        (files["locked"], "--pcrs", str(tmp / "bad.json")),
        (files["locked"], "--pcrs", str(tmp / "missing.json")),
        (files["locked"], "--pcr", "0=xyz"),
        (files["locked"], "--pcr", PCR0),
        (files["locked"],),  # neither --pcrs nor --pcr
        (files["locked"], "--pcrs", files["describe"], "--pcr", f"0={PCR0}"),
    ]
    for args in attempts:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stdout == ""


def test_without_an_attested_pcr0_the_image_is_still_required():
    signer = hashlib.sha384(b"signer").hexdigest()
    policy = json.loads(LOCKED)
    policy["Statement"][1]["Condition"] = {"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR8": signer}}
    codes = {f.code for f in audit_policy(json.dumps(policy), attested_pcrs={8: signer})}
    assert codes == {FindingCode.IMAGE_NOT_PINNED}  # a PCR8 pin admits every image that key signs
    codes = {f.code for f in audit_policy(LOCKED, attested_pcrs={8: signer})}
    assert codes == {FindingCode.PCR_NOT_ATTESTED, FindingCode.NO_ATTESTED_ACCESS}
