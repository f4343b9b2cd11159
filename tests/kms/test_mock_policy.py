"""Key-policy evaluation (harness/kms/policy.py), one table per IAM semantic (KMS.md section 2).

Each row: a policy (or one statement), a request, and the expected decision with the deciding
statement. A row fails if the semantic it names breaks."""

from __future__ import annotations

import json

import pytest

from harness.kms.policy import PolicyError, Request, evaluate, parse_policy

ACCT = "111122223333"
ROLE = f"arn:aws:iam::{ACCT}:role/vault-enclave"
OTHER_ROLE = f"arn:aws:iam::{ACCT}:role/other"
FOREIGN = "arn:aws:iam::444455556666:role/vault-enclave"
KEY = f"arn:aws:kms:us-east-1:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PCR0 = "ab" * 48
PCR0_KEY = "kms:RecipientAttestation:PCR0"


def stmt(sid="S", effect="Allow", principal=None, action="kms:Decrypt", resource="*", condition=None, **extra):
    s = {"Sid": sid, "Effect": effect, "Principal": principal or {"AWS": ROLE}, "Action": action,
         "Resource": resource, **extra}
    if condition is not None:
        s["Condition"] = condition
    for k in [k for k in ("Principal", "Action", "Resource") if f"Not{k}" in extra]:
        del s[k]
    return s


def pol(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def req(action="kms:Decrypt", principal=ROLE, resource=KEY, **context) -> Request:
    return Request(principal, action, resource, {k.replace("__", ":"): v for k, v in context.items()})


def check(policy: str, request: Request, allowed: bool, statement):
    d = evaluate(policy, request)
    assert (d.allowed, d.statement) == (allowed, statement), d.reason


# --- effects: explicit deny wins, implicit deny ----------------------------------------------

EFFECTS = [
    ("allow", pol(stmt("A")), req(), True, "A"),
    ("no statement matches: implicit deny", pol(stmt("A", action="kms:Encrypt")), req(), False, None),
    ("explicit deny beats an earlier allow", pol(stmt("A"), stmt("D", "Deny")), req(), False, "D"),
    ("explicit deny beats a later allow", pol(stmt("D", "Deny"), stmt("A")), req(), False, "D"),
    ("a deny that does not match leaves the allow", pol(stmt("A"), stmt("D", "Deny", action="kms:Encrypt")),
     req(), True, "A"),
    ("statement without Sid is named by index", pol(stmt("A", action="kms:Encrypt"), {
        k: v for k, v in stmt().items() if k != "Sid"}), req(), True, 1),
]


@pytest.mark.parametrize("policy,request_,allowed,statement", [r[1:] for r in EFFECTS], ids=[r[0] for r in EFFECTS])
def test_effects(policy, request_, allowed, statement):
    check(policy, request_, allowed, statement)


# --- actions ----------------------------------------------------------------------------------

ACTIONS = [
    ("exact", "kms:Decrypt", "kms:Decrypt", True),
    ("case-insensitive", "KMS:decrypt", "kms:Decrypt", True),
    ("service wildcard", "kms:*", "kms:GenerateDataKey", True),
    ("prefix wildcard", "kms:Generate*", "kms:GenerateDataKey", True),
    ("prefix wildcard, other action", "kms:Generate*", "kms:Decrypt", False),
    ("single-character wildcard", "kms:?ecrypt", "kms:Decrypt", True),
    ("no substring match", "kms:Decrypt", "kms:DecryptMore", False),
    ("list of actions", ["kms:Encrypt", "kms:Decrypt"], "kms:Decrypt", True),
    ("other service", "s3:*", "kms:Decrypt", False),
    ("bare star", "*", "kms:Decrypt", True),
]


@pytest.mark.parametrize("pattern,action,allowed", [r[1:] for r in ACTIONS], ids=[r[0] for r in ACTIONS])
def test_actions(pattern, action, allowed):
    check(pol(stmt("A", action=pattern)), req(action), allowed, "A" if allowed else None)


@pytest.mark.parametrize("not_action,action,allowed", [
    ("kms:Decrypt", "kms:Decrypt", False),
    ("kms:Decrypt", "kms:Encrypt", True),
    ("kms:Gen*", "kms:GenerateDataKey", False),
])
def test_not_action(not_action, action, allowed):
    check(pol(stmt("A", NotAction=not_action)), req(action), allowed, "A" if allowed else None)


# --- principals -------------------------------------------------------------------------------

PRINCIPALS = [
    ("star", "*", ROLE, True),
    ("AWS star", {"AWS": "*"}, FOREIGN, True),
    ("exact ARN", {"AWS": ROLE}, ROLE, True),
    ("other role", {"AWS": OTHER_ROLE}, ROLE, False),
    ("list", {"AWS": [OTHER_ROLE, ROLE]}, ROLE, True),
    ("account root matches every principal of the account", {"AWS": f"arn:aws:iam::{ACCT}:root"}, ROLE, True),
    ("account root does not match another account", {"AWS": f"arn:aws:iam::{ACCT}:root"}, FOREIGN, False),
    ("bare account id means its root", {"AWS": ACCT}, OTHER_ROLE, True),
    ("role matches its assumed-role session", {"AWS": ROLE},
     f"arn:aws:sts::{ACCT}:assumed-role/vault-enclave/i-0abc", True),
    ("role does not match another role's session", {"AWS": ROLE},
     f"arn:aws:sts::{ACCT}:assumed-role/other/i-0abc", False),
    ("a service principal is never an AWS caller", {"Service": "ec2.amazonaws.com"}, ROLE, False),
]


@pytest.mark.parametrize("principal,caller,allowed", [r[1:] for r in PRINCIPALS], ids=[r[0] for r in PRINCIPALS])
def test_principals(principal, caller, allowed):
    check(pol(stmt("A", principal=principal)), req(principal=caller), allowed, "A" if allowed else None)


@pytest.mark.parametrize("not_principal,caller,allowed", [
    ({"AWS": ROLE}, ROLE, False),
    ({"AWS": ROLE}, OTHER_ROLE, True),
    ({"AWS": f"arn:aws:iam::{ACCT}:root"}, FOREIGN, True),
])
def test_not_principal(not_principal, caller, allowed):
    check(pol(stmt("A", NotPrincipal=not_principal)), req(principal=caller), allowed, "A" if allowed else None)


# --- resources --------------------------------------------------------------------------------

@pytest.mark.parametrize("field,value,allowed", [
    ("Resource", "*", True),
    ("Resource", KEY, True),
    ("Resource", f"arn:aws:kms:us-east-1:{ACCT}:key/*", True),
    ("Resource", f"arn:aws:kms:eu-west-1:{ACCT}:key/*", False),
    ("Resource", KEY.upper(), False),  # resources are case-sensitive
    ("NotResource", KEY, False),
    ("NotResource", f"arn:aws:kms:eu-west-1:{ACCT}:key/*", True),
])
def test_resources(field, value, allowed):
    s = stmt("A", **({"NotResource": value} if field == "NotResource" else {"resource": value}))
    check(pol(s), req(), allowed, "A" if allowed else None)


# --- condition operators: (operator, policy value, context value or None for missing, holds) ---

CONDITIONS = [
    ("StringEquals", PCR0, PCR0, True),
    ("StringEquals", PCR0, PCR0.upper(), False),
    ("StringEquals", PCR0, None, False),  # positive operator, missing key: false
    ("StringEquals", [("cd" * 48), PCR0], PCR0, True),  # values are alternatives
    ("StringNotEquals", PCR0, PCR0, False),
    ("StringNotEquals", PCR0, "cd" * 48, True),
    ("StringNotEquals", PCR0, None, True),  # negated operator, missing key: true
    ("StringNotEquals", ["cd" * 48, PCR0], PCR0, False),  # must differ from every value
    ("StringEqualsIgnoreCase", PCR0.upper(), PCR0, True),
    ("StringEqualsIgnoreCase", PCR0, "cd" * 48, False),
    ("StringEqualsIgnoreCase", PCR0, None, False),
    ("StringNotEqualsIgnoreCase", PCR0.upper(), PCR0, False),
    ("StringNotEqualsIgnoreCase", PCR0, "cd" * 48, True),
    ("StringNotEqualsIgnoreCase", PCR0, None, True),
    ("StringLike", "ab*", PCR0, True),
    ("StringLike", "ab?b", "abcb", True),
    ("StringLike", "cd*", PCR0, False),
    ("StringLike", "AB*", PCR0, False),  # StringLike is case-sensitive
    ("StringLike", "ab*", None, False),
    ("StringNotLike", "cd*", PCR0, True),
    ("StringNotLike", "ab*", PCR0, False),
    ("StringNotLike", "ab*", None, True),
    ("StringEqualsIfExists", PCR0, None, True),  # IfExists: missing key passes
    ("StringEqualsIfExists", PCR0, "cd" * 48, False),  # ... but a present wrong value does not
    ("StringEqualsIfExists", PCR0, PCR0, True),
    ("StringEqualsIgnoreCaseIfExists", PCR0.upper(), None, True),
    ("StringNotEqualsIfExists", PCR0, PCR0, False),
    ("NumericEquals", "5", "5", True),
    ("NumericEquals", "5", "5.0", True),
    ("NumericEquals", "5", "6", False),
    ("NumericEquals", "5", "five", False),
    ("NumericNotEquals", "5", "6", True),
    ("NumericNotEquals", "5", "5", False),
    ("NumericNotEquals", "5", None, True),
    ("NumericLessThan", "32", "16", True),
    ("NumericLessThan", "32", "32", False),
    ("NumericLessThanEquals", "32", "32", True),
    ("NumericGreaterThan", "32", "64", True),
    ("NumericGreaterThan", "32", None, False),
    ("NumericGreaterThanEquals", "32", "31", False),
    ("NumericLessThanIfExists", "32", None, True),
    ("Bool", "true", "true", True),
    ("Bool", True, "true", True),
    ("Bool", "true", "false", False),
    ("Bool", "true", None, False),
    ("ArnEquals", ROLE, ROLE, True),
    ("ArnLike", f"arn:aws:iam::{ACCT}:role/*", ROLE, True),
    ("ArnLike", "arn:aws:iam::*:role/vault-*", FOREIGN, True),
    ("ArnLike", f"arn:aws:iam::{ACCT}:user/*", ROLE, False),
    ("ArnNotEquals", ROLE, OTHER_ROLE, True),
    ("ArnNotLike", f"arn:aws:iam::{ACCT}:*", ROLE, False),
    ("ArnNotLike", f"arn:aws:iam::{ACCT}:*", None, True),
    ("Null", "true", None, True),  # Null true: the key must be absent
    ("Null", "true", PCR0, False),
    ("Null", "false", PCR0, True),  # Null false: the key must be present
    ("Null", "false", None, False),
]


@pytest.mark.parametrize("operator,value,context,holds", CONDITIONS,
                         ids=[f"{o}-{i}" for i, (o, *_r) in enumerate(CONDITIONS)])
def test_condition_operators(operator, value, context, holds):
    policy = pol(stmt("A", condition={operator: {"k:Key": value}}))
    ctx = {} if context is None else {"k:Key": context}
    check(policy, Request(ROLE, "kms:Decrypt", KEY, ctx), holds, "A" if holds else None)


def test_condition_keys_are_case_insensitive():
    policy = pol(stmt("A", condition={"StringEquals": {"KMS:RecipientAttestation:pcr0": PCR0}}))
    check(policy, Request(ROLE, "kms:Decrypt", KEY, {PCR0_KEY: PCR0}), True, "A")


SETS = [
    ("ForAnyValue:StringEquals", ["a", "b"], ["b", "z"], True),
    ("ForAnyValue:StringEquals", ["a", "b"], ["y", "z"], False),
    ("ForAnyValue:StringEquals", ["a"], None, False),  # ForAnyValue on a missing key: false
    ("ForAnyValue:StringEquals", ["a"], [], False),
    ("ForAllValues:StringEquals", ["a", "b"], ["a", "b"], True),
    ("ForAllValues:StringEquals", ["a", "b"], ["a", "z"], False),
    ("ForAllValues:StringEquals", ["a"], None, True),  # ForAllValues on a missing key: true
    ("ForAllValues:StringEquals", ["a"], [], True),
    ("ForAnyValue:StringNotEquals", ["a"], ["a", "z"], True),
    ("ForAllValues:StringNotEquals", ["a"], ["a", "z"], False),
    ("ForAnyValue:StringLike", ["a*"], ["xa", "ab"], True),
]


@pytest.mark.parametrize("operator,value,context,holds", SETS, ids=[f"{o}-{i}" for i, (o, *_r) in enumerate(SETS)])
def test_set_operators(operator, value, context, holds):
    policy = pol(stmt("A", condition={operator: {"kms:EncryptionContextKeys": value}}))
    ctx = {} if context is None else {"kms:EncryptionContextKeys": context}
    check(policy, Request(ROLE, "kms:Decrypt", KEY, ctx), holds, "A" if holds else None)


def test_all_operators_and_all_keys_must_hold():
    cond = {"StringEqualsIgnoreCase": {PCR0_KEY: PCR0, "kms:RecipientAttestation:PCR1": "11" * 48},
            "Bool": {"aws:SecureTransport": "true"}}
    policy = pol(stmt("A", condition=cond))
    full = {PCR0_KEY: PCR0, "kms:RecipientAttestation:PCR1": "11" * 48, "aws:SecureTransport": "true"}
    check(policy, Request(ROLE, "kms:Decrypt", KEY, full), True, "A")
    for dropped in full:
        ctx = {k: v for k, v in full.items() if k != dropped}
        check(policy, Request(ROLE, "kms:Decrypt", KEY, ctx), False, None)


def test_deny_unless_attested_pcr0_denies_calls_without_attestation():
    # The usual guard: Deny when PCR0 differs; StringNotEquals on a missing key is true, so a call
    # without any Recipient is denied explicitly, and a wrong PCR0 too.
    policy = pol(stmt("A", action="kms:*"),
                 stmt("OnlyEnclave", "Deny", action="kms:Decrypt",
                      condition={"StringNotEqualsIgnoreCase": {PCR0_KEY: PCR0}}))
    check(policy, req(), False, "OnlyEnclave")
    check(policy, req(**{"kms__RecipientAttestation__PCR0": "cd" * 48}), False, "OnlyEnclave")
    check(policy, req(**{"kms__RecipientAttestation__PCR0": PCR0}), True, "A")
    check(policy, req("kms:DescribeKey"), True, "A")


def test_implicit_deny_names_the_near_miss():
    policy = pol(stmt("EnclaveOnly", condition={"StringEqualsIgnoreCase": {PCR0_KEY: PCR0}}))
    d = evaluate(policy, req(**{"kms__RecipientAttestation__PCR0": "cd" * 48}))
    assert not d.allowed and d.statement is None and not d.explicit_deny
    assert d.near_misses == (("EnclaveOnly", f"condition StringEqualsIgnoreCase {PCR0_KEY} is not met"),)


# --- parsing ----------------------------------------------------------------------------------

MALFORMED = [
    ("not JSON", "{"),
    ("not an object", "[]"),
    ("no statements", '{"Version":"2012-10-17","Statement":[]}'),
    ("unknown top-level field", '{"Statement":[{}],"Extra":1}'),
    ("bad version", json.dumps({"Version": "2020-01-01", "Statement": [stmt()]})),
    ("bad effect", pol(stmt(effect="Maybe"))),
    ("Action and NotAction", pol({**stmt(), "NotAction": "kms:Encrypt"})),
    ("no Action", pol({"Effect": "Allow", "Principal": "*", "Resource": "*"})),
    ("no Principal", pol({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})),
    ("empty action list", pol(stmt(action=[]))),
    ("unknown operator", pol(stmt(condition={"StringSortOf": {"k": "v"}}))),
    ("unknown set operator", pol(stmt(condition={"ForSomeValues:StringEquals": {"k": "v"}}))),
    ("Null with IfExists", pol(stmt(condition={"NullIfExists": {"k": "true"}}))),
    ("Null not boolean", pol(stmt(condition={"Null": {"k": "maybe"}}))),
    ("condition value an object", pol(stmt(condition={"StringEquals": {"k": {"x": 1}}}))),
    ("unknown principal type", pol(stmt(principal={"Robot": "x"}))),
    ("unknown statement field", pol(stmt(Comment="x"))),
]


@pytest.mark.parametrize("text", [r[1] for r in MALFORMED], ids=[r[0] for r in MALFORMED])
def test_malformed_policies_are_refused(text):
    with pytest.raises(PolicyError):
        parse_policy(text)


def test_parse_keeps_the_text_and_single_statement_objects():
    text = json.dumps({"Version": "2012-10-17", "Statement": stmt("Only")})
    p = parse_policy(text)
    assert p.text == text and [s.label for s in p.statements] == ["Only"]
    assert p.statements[0].principal == (ROLE,) and p.statements[0].action == ("kms:Decrypt",)
