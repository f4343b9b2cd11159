"""Soundness of the key-policy audit (spec §11.5), by property: whenever the audit reports no
finding, no request outside the attested enclave gets key material.

Policies are drawn from the constructs the audit knows about (attestation operators, wildcards,
principals, Deny guards); requests from callers inside and outside the account, with no
attestation, the attested PCRs, or another image's. The oracle is the mocked KMS's evaluation of
the whole policy, on many more requests than the audit's own two probes per statement.
"""

from __future__ import annotations

import hashlib
import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness.kms.audit import BYPASS_ACTIONS, RELEASE_ACTIONS, audit_policy
from harness.kms.policy import Request, evaluate

H = lambda label: hashlib.sha384(label.encode()).hexdigest()  # noqa: E731
ATTESTED = {0: H("image"), 1: H("kernel"), 2: H("app"), 8: H("signer")}
OTHER = H("other image")
ACCOUNT = "111122223333"
ENCLAVE = f"arn:aws:iam::{ACCOUNT}:role/enclave-parent"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/admin"
CALLERS = [ENCLAVE, ADMIN, f"arn:aws:iam::{ACCOUNT}:role/anyone-else", "arn:aws:iam::444455556666:role/outsider"]
A = "kms:RecipientAttestation:"
KEY = "arn:aws:kms:us-east-1:111122223333:key/k"

principals = st.sampled_from([{"AWS": ENCLAVE}, {"AWS": ADMIN}, {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "*",
                              {"AWS": [ENCLAVE, ADMIN]}])
actions = st.lists(st.sampled_from(["kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyPair", "kms:*",
                                    "kms:Generate*", "kms:CreateGrant", "kms:ReEncrypt*", "kms:Describe*", "*"]),
                   min_size=1, max_size=3, unique=True)
operators = st.sampled_from(["StringEqualsIgnoreCase", "StringEqualsIgnoreCase", "StringEquals", "StringLike", "StringNotEqualsIgnoreCase",
                             "StringEqualsIgnoreCaseIfExists", "ForAllValues:StringEqualsIgnoreCase",
                             "ForAnyValue:StringEquals", "StringNotEqualsIgnoreCaseIfExists"])
keys = st.sampled_from([(0, "PCR0"), (0, "ImageSha384"), (8, "PCR8"), (4, "PCR4"), (2, "PCR2")])


@st.composite
def condition(draw):
    index, name = draw(keys)
    right = ATTESTED.get(index, H("pcr4"))
    value = draw(st.sampled_from([right, right, right, right.upper(), OTHER, "*", right[:10] + "*", [right, OTHER]]))
    if draw(st.booleans()):
        return {"Null": {A + name: draw(st.sampled_from(["true", "false"]))}}
    return {draw(operators): {A + name: value}}


@st.composite
def statement(draw):
    out = {"Effect": draw(st.sampled_from(["Allow", "Allow", "Deny"])), "Resource": "*"}
    out["NotPrincipal" if draw(st.integers(0, 9)) == 0 else "Principal"] = draw(principals)
    out["NotAction" if draw(st.integers(0, 9)) == 0 else "Action"] = draw(actions)
    conditions = draw(st.lists(condition(), max_size=2))
    if conditions:
        merged: dict = {}
        for c in conditions:
            for op, body in c.items():
                merged.setdefault(op, {}).update(body)
        out["Condition"] = merged
    return out


LOCKED = [
    {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": ADMIN}, "Action": ["kms:Create*", "kms:Describe*",
     "kms:Get*", "kms:List*", "kms:Put*"], "Resource": "*"},
    {"Sid": "EnclaveOnly", "Effect": "Allow", "Principal": {"AWS": ENCLAVE}, "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
     "Resource": "*", "Condition": {"StringEqualsIgnoreCase": {A + "PCR0": ATTESTED[0]}}},
]
GUARD = {"Sid": "Guard", "Effect": "Deny", "Principal": "*", "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
         "Resource": "*", "Condition": {"StringNotEqualsIgnoreCase": {A + "PCR0": ATTESTED[0]}}}
# Mostly the locked policy (with or without a guard Deny) plus one or two drawn statements, so that
# many drawn policies are clean and the property has something to check; some fully random ones.
policies = st.one_of(
    st.lists(statement(), min_size=1, max_size=4),
    st.tuples(st.booleans(), st.lists(statement(), max_size=2)).map(lambda t: LOCKED + ([GUARD] if t[0] else []) + t[1]),
).map(lambda s: {"Version": "2012-10-17", "Statement": s})


def contexts():
    attested = {f"{A}PCR{i}": v for i, v in ATTESTED.items()} | {A + "ImageSha384": ATTESTED[0]}
    other = attested | {A + "PCR0": OTHER, A + "ImageSha384": OTHER}
    other_signer = attested | {A + "PCR8": OTHER}
    return {"none": {}, "attested": attested, "other-image": other, "other-signer": other_signer}


def _with(*extra: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": LOCKED + list(extra)}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies)
# Rare draws, pinned so every run covers them: a bypass for the account, an unpinned image.
@example(_with({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:CreateGrant",
                "Resource": "*"}))
@example(_with({"Effect": "Allow", "Principal": {"AWS": ENCLAVE}, "Action": "kms:Decrypt", "Resource": "*",
                "Condition": {"Null": {A + "PCR0": "false"}}}))
# Found by this test: an exact StringLike pin of the signer (PCR8) alone let another image through.
@example({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Principal": {"AWS": ENCLAVE},
          "Action": ["kms:Decrypt"], "Condition": {"StringLike": {A + "PCR8": ATTESTED[8]}}}]})
def test_no_finding_means_only_the_attested_enclave_gets_key_material(policy):
    text = json.dumps(policy)
    if audit_policy(text, attested_pcrs=ATTESTED, enclave_principals=[ENCLAVE]):
        return
    for caller in CALLERS:
        for name, context in contexts().items():
            for action in RELEASE_ACTIONS:
                decision = evaluate(text, Request(caller, action, KEY, context))
                if decision.allowed:
                    # Only an attested call of the attested image may pass; the signer PCR may differ
                    # only if the policy did not pin it (then the image pin still holds).
                    assert name in ("attested", "other-signer"), (caller, name, action, decision)
                    assert caller != CALLERS[-1], ("outsider got key material", decision)
        for action in BYPASS_ACTIONS:
            if caller in (ENCLAVE, CALLERS[-1]):
                assert not evaluate(text, Request(caller, action, KEY, {})).allowed, (caller, action)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
                    max_leaves=12))
def test_arbitrary_json_is_findings_or_audit_error(value):
    from harness.kms.audit import AuditError

    try:
        audit_policy(json.dumps(value), attested_pcrs=ATTESTED)
    except AuditError:
        pass
