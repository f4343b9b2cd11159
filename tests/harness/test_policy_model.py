"""The harness's policy model (harness/suites/policy_model.py) against examples worked by hand
from the text of spec sections 13.5 and 13.6, and against the hand-worked cases that the
``tokens/policy-fields`` check sends to a Vault."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.suites import policy_model as model
from harness.suites import tokens

A = "0x" + "ab" * 20
B = "0x" + "cd" * 20


def sign_message(message="hello", **extra):
    return {"from": A, "message": message, **extra}


# ---- 13.5: which components are valid ------------------------------------------------------------

VALID = [
    {"type": "eoa:create"},
    {"type": "eoa:create", "requiredMetadataPatterns": [], "allowedMetadataPatterns": []},
    {"type": "eoa:read", "metadataPatterns": [{"key": "k", "rule": {"pattern": "^v"}}]},
    {"type": "eoa:signMessage", "allowlist": [A.upper().replace("0X", "0x")], "chainId": 0, "messagePattern": "x"},
    {"type": "eoa:signTypedData"},
    {"type": "eoa:signTransaction", "payloadPatterns": {}},
    {"type": "eoa:signTransaction", "payloadPatterns": {"value": [{"op": "greaterThan", "value": "-5"}],
                                                        "to": [{"pattern": "^0x"}], "input": []}},
    {"type": "eoa:signAuthorization", "payloadPatterns": {"chainId": {"op": "equalTo", "value": 1},
                                                          "address": {"pattern": "aa$"}}},
    {"type": "eoa:signStructuredMessage", "structuredPatterns": {}},
    {"type": "eoa:signStructuredMessage", "structuredPatterns": {"useropV06": {"initCode": {"pattern": "^0x$"}},
                                                                 "useropV07": {"factory": {"pattern": ""}}}},
    {"type": "accessToken:read", "revealSensitive": False},
    {"type": "eoa:signMessage", "messagePattern": "(a+)+$"},  # RE2 compiles it, and matches it linearly
    {"type": "eoa:signMessage", "messagePattern": "a" * 1024},  # exactly the limit
    {"type": "eoa:signMessage", "metadataPatterns": [{"key": "n", "rule": {"op": "lessThan",
                                                                           "value": 2 ** 80}}]},
]


@pytest.mark.parametrize("component", VALID)
def test_valid_components(component):
    assert model.component_problem(component) is None


@pytest.mark.parametrize("what,policies", tokens._bad_components(A))
def test_components_the_spec_refuses(what, policies):
    assert model.policies_problem(policies) is not None, what


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=a)", "(?<=a)b", "(?!a)", "[", "a{2,1}", "a" * 1025])
def test_patterns_re2_refuses(pattern):
    assert model.pattern_problem(pattern) is not None


def test_number_values_are_integers_never_floats():
    for value in (1.5, 2.0, 1e3, "1.5", "1e3", "0x10", "", "-", True, None):
        assert model.rule_problem({"op": "equalTo", "value": value}) is not None, value
    for value in (0, -7, 2 ** 256, "0", "-12", "340282366920938463463374607431768211456"):
        assert model.rule_problem({"op": "equalTo", "value": value}) is None, value


def test_number_rules_only_on_quantities():
    assert model.rule_problem({"op": "equalTo", "value": 1}, model.QUANTITY) is None
    assert model.rule_problem({"op": "equalTo", "value": 1}, model.ADDRESS) is not None
    assert model.rule_problem({"op": "equalTo", "value": 1}, model.BYTES) is not None
    assert model.rule_problem({"pattern": "x"}, model.ADDRESS) is None


def test_policies_must_be_a_non_empty_array():
    assert model.policies_problem([]) is not None
    assert model.policies_problem({"type": "eoa:read"}) is not None
    assert model.policies_problem([{"type": "eoa:read"}]) is None


# ---- 13.6: evaluation, example by example from the text ------------------------------------------

def test_pattern_searches():
    # '{"pattern": "abc"} holds for any value containing abc; anchor with ^/$ for a whole match.'
    assert model.pattern_found("abc", "xxabcxx")
    assert not model.pattern_found("^abc$", "xxabcxx")
    assert model.pattern_found("^abc$", "abc")


def test_catastrophic_pattern_is_answered():
    assert not model.pattern_found("(a+)+$", "a" * 50000 + "!")
    assert model.pattern_found("(a+)+$", "a" * 50000)


def test_allowlist_empty_or_contains_from_case_insensitively():
    def allowed(allowlist, sender):
        return model.allows([{"type": "eoa:signMessage", "allowlist": allowlist}], "eoa:signMessage",
                            sign_message() | {"from": sender})
    assert allowed([], A)
    assert allowed([A.upper().replace("0X", "0x")], A)
    assert allowed([B, A], A.upper().replace("0X", "0x"))
    assert not allowed([B], A)


def test_metadata_rule_needs_the_key():
    # "A metadata rule holds when the metadata has key and the rule holds for its value."
    policies = [{"type": "eoa:signTypedData", "metadataPatterns": [{"key": "team", "rule": {"pattern": ""}}]}]
    assert model.allows(policies, "eoa:signTypedData", {"from": A}, {"team": "x"})
    assert not model.allows(policies, "eoa:signTypedData", {"from": A}, {"other": "x"})


def test_metadata_value_texts():
    # "a string as is, true/false, a number in its shortest decimal form (1, not 1.0)"
    assert model.metadata_text("Abc") == "Abc"
    assert model.metadata_text(True) == "true" and model.metadata_text(False) == "false"
    assert model.metadata_text(1) == "1" and model.metadata_text(1.0) == "1"
    assert model.metadata_text(2.5) == "2.5"


def test_number_rules_on_metadata():
    # "a number rule when the value is an integer (a quantity, a JSON integer, or a string of decimal digits)"
    def holds(op, bound, value):
        policies = [{"type": "eoa:read", "metadataPatterns": [{"key": "n", "rule": {"op": op, "value": bound}}]}]
        return model.shows(policies, "eoa:list", {"n": value})
    assert holds("greaterThan", 2, 3) and holds("greaterThan", "2", "3")
    assert not holds("greaterThan", 3, 3) and holds("equalTo", 3, "3") and holds("lessThan", -1, -2)
    assert not holds("equalTo", 3, "three") and not holds("equalTo", 1, True) and not holds("equalTo", 3, 3.5)
    # Big integers compared exactly, never as floats: 2^64 + 1 and 2^64 are one float apart at most.
    assert holds("greaterThan", str(2 ** 64), str(2 ** 64 + 1))
    assert not holds("equalTo", 2 ** 64, 2 ** 64 + 1)


def test_message_pattern_on_the_message_as_sent():
    policies = [{"type": "eoa:signMessage", "messagePattern": "^0xdead"}]
    assert model.allows(policies, "eoa:signMessage", sign_message("0xdeadbeef", format="hex"))
    assert not model.allows(policies, "eoa:signMessage", sign_message("0xDEADBEEF", format="hex"))


def test_chain_id_must_be_present_and_equal():
    policies = [{"type": "eoa:signMessage", "chainId": 5}]
    assert model.allows(policies, "eoa:signMessage", sign_message(chainId=5))
    assert not model.allows(policies, "eoa:signMessage", sign_message(chainId=6))
    assert not model.allows(policies, "eoa:signMessage", sign_message())


def test_components_or_members_and():
    # "every constraint inside one component must hold (and), components of the same type are alternatives (or)"
    one = [{"type": "eoa:signMessage", "messagePattern": "^h", "chainId": 1}]
    assert not model.allows(one, "eoa:signMessage", sign_message(chainId=2))
    two = [{"type": "eoa:signMessage", "messagePattern": "^x"}, {"type": "eoa:signMessage", "chainId": 2}]
    assert model.allows(two, "eoa:signMessage", sign_message(chainId=2))
    assert not model.allows([{"type": "eoa:signTypedData"}], "eoa:signMessage", sign_message())


def tx(**fields):
    base = {"type": "0x02", "chainId": "0x1", "nonce": "0x0", "to": A, "value": "0x10", "input": "0x"}
    return {"from": A, "transaction": {**base, **fields}}


def tx_allows(patterns, options):
    return model.allows([{"type": "eoa:signTransaction", "payloadPatterns": patterns}], "eoa:signTransaction",
                        options)


def test_quantities_matched_in_decimal():
    # "patterns search its decimal digits (0x10 is matched as 16)"
    assert tx_allows({"value": [{"pattern": "^16$"}]}, tx())
    assert not tx_allows({"value": [{"pattern": "0x"}]}, tx())
    assert tx_allows({"value": [{"pattern": "^16$"}]}, tx(value="16"))
    assert tx_allows({"value": [{"pattern": "^16$"}]}, tx(value=16))
    big = hex(2 ** 64 + 1)
    assert tx_allows({"value": [{"op": "greaterThan", "value": str(2 ** 64)}]}, tx(value=big))
    assert not tx_allows({"value": [{"op": "equalTo", "value": str(2 ** 64)}]}, tx(value=big))


def test_to_null_fails_every_rule_on_to():
    # "to: null (creation) has no value, so every rule on to fails"
    assert not tx_allows({"to": [{"pattern": ""}]}, tx(to=None))
    assert tx_allows({"to": []}, tx(to=None))  # "Empty arrays and objects restrict nothing."
    assert tx_allows({"to": [{"pattern": "^0xabab"}]}, tx(to=A.upper().replace("0X", "0x")))


def test_transaction_must_have_the_field():
    assert not tx_allows({"gasPrice": [{"pattern": ""}]}, tx())
    assert tx_allows({"input": [{"pattern": "^0xa9"}]}, tx(input="0xA9"))


def test_authorization_patterns():
    def allows(patterns, **authorization):
        options = {"from": A, "authorization": {"chainId": "1", "address": B, "nonce": 0, **authorization}}
        return model.allows([{"type": "eoa:signAuthorization", "payloadPatterns": patterns}],
                            "eoa:signAuthorization", options)
    assert allows({"chainId": {"pattern": "^137$"}}, chainId="0x89")
    assert allows({"nonce": {"op": "lessThan", "value": 1}})
    assert not allows({"address": {"pattern": "^0xab"}})


def test_structured_patterns_by_version():
    def allows(patterns, version="useropV07", chain_id=1, **op):
        options = {"from": A, "structuredMessage": {version: {"sender": A, "nonce": "0x0", **op}},
                   "chainId": chain_id}
        return model.allows([{"type": "eoa:signStructuredMessage", "structuredPatterns": patterns}],
                            "eoa:signStructuredMessage", options)
    # "a version the object does not name is not restricted"
    assert allows({"useropV06": {"sender": {"pattern": "^0x00"}}})
    assert not allows({"useropV06": {"sender": {"pattern": "^0x00"}}}, "useropV06")
    # chainId is the request's; the default entrypoint is the one hashed
    assert allows({"useropV07": {"chainId": {"op": "equalTo", "value": 10}}}, chain_id=10)
    assert allows({"useropV07": {"entrypoint": {"pattern": "^0x0000000071727de22e5e9d8baf0edac6f37da032$"}}})
    assert allows({"useropV06": {"entrypoint": {"pattern": "^0x5ff137d4"}}}, "useropV06")
    # "A field the operation does not carry fails its rule."
    assert not allows({"useropV07": {"paymaster": {"pattern": ""}}})


def test_create_required_and_allowed_metadata():
    def allows(metadata, required=None, allowed=None):
        component = {"type": "eoa:create"}
        if required is not None:
            component["requiredMetadataPatterns"] = required
        if allowed is not None:
            component["allowedMetadataPatterns"] = allowed
        return model.allows([component], "eoa:create", {"metadata": metadata})
    team = {"key": "team", "rule": {"pattern": "^pay"}}
    tier = {"key": "tier", "rule": {"op": "lessThan", "value": 5}}
    assert allows({"team": "payments", "x": 1}, required=[team])
    assert not allows({}, required=[team])
    # allowed: "every key of the new EOA's metadata is the key of a required or allowed rule"
    assert allows({"team": "payments", "tier": 3}, required=[team], allowed=[tier])
    assert not allows({"team": "payments", "tier": 3, "x": 1}, required=[team], allowed=[tier])
    assert not allows({"tier": 7}, allowed=[tier])
    assert allows({}, allowed=[tier])
    assert allows({"x": 1}, allowed=[])


def test_signed_tokens_only_narrow():
    base = [{"type": "eoa:signMessage", "messagePattern": "^a"}]
    signed = [{"type": "eoa:signMessage", "chainId": 1}]
    assert model.all_allow([base, signed], "eoa:signMessage", sign_message("abc", chainId=1))
    assert not model.all_allow([base, signed], "eoa:signMessage", sign_message("abc"))
    assert not model.all_allow([base, [{"type": "eoa:signMessage"}]], "eoa:signMessage", sign_message("xyz"))


def test_lists_filter_by_read_components():
    read = [{"type": "eoa:read", "metadataPatterns": [{"key": "team", "rule": {"pattern": "ops"}}]}]
    assert model.shows(read, "eoa:list", {"team": "devops"})
    assert not model.shows(read, "eoa:list", {})
    assert not model.has_component([{"type": "eoa:signMessage"}], "eoa:list")
    assert model.has_component([{"type": "accessToken:read", "revealSensitive": True}], "accessToken:list")


# ---- the check's hand-worked cases -----------------------------------------------------------------

@pytest.mark.parametrize("case", tokens.POLICY_CASES, ids=lambda case: case.name)
def test_model_agrees_with_the_hand_worked_cases(case):
    addresses = {"payments": "0x" + "Ab" * 20, "ops": "0x" + "Cd" * 20}
    policies = tokens.resolve(list(case.policies), addresses)
    assert model.policies_problem(policies) is None
    assert model.allows(policies, case.operation, case.options(addresses),
                        tokens.CASE_EOAS.get(case.eoa)) is case.allowed


def test_the_cases_cover_allow_and_deny_for_every_operation_they_use():
    outcomes = {}
    for case in tokens.POLICY_CASES:
        outcomes.setdefault(case.operation, set()).add(case.allowed)
    assert set(outcomes) == {"eoa:signMessage", "eoa:signTypedData", "eoa:signTransaction", "eoa:signAuthorization",
                             "eoa:signStructuredMessage", "eoa:create"}
    assert all(seen == {True, False} for seen in outcomes.values())


# ---- the stand-in for RE2 reads the harness's generated patterns as RE2 does -----------------------

@settings(max_examples=300, deadline=None, database=None)
@given(pattern=tokens.patterns(), text=st.text(alphabet="ab017x.\n\u0663 payments", max_size=12))
def test_stand_in_engine_agrees_with_re2(pattern, text):
    with_re2 = model.pattern_found(pattern, text)
    saved, model._re2 = model._re2, None
    try:
        assert model.pattern_found(pattern, text) == with_re2, (pattern, text)
    finally:
        model._re2 = saved


def test_stand_in_engine_refuses_to_guess(monkeypatch):
    monkeypatch.setattr(model, "_re2", None)
    for pattern in ("(?=a)", "(?i)a", r"\pL", r"a\z", "[[:alpha:]]"):
        with pytest.raises(model.PatternUnknown):
            model.pattern_found(pattern, "a")
    assert not model.pattern_found("^a$", "a\n")  # RE2's $: the very end only


def test_the_7702_type_is_the_encoded_one():
    # 13.6: "type is the type the Vault encodes, so the client's 0x05 is 4 (12.3)"
    assert tx_allows({"type": [{"op": "equalTo", "value": 4}]}, tx(type="0x05"))
    assert not tx_allows({"type": [{"pattern": "5"}]}, tx(type="0x05"))
    assert tx_allows({"type": [{"pattern": "^2$"}]}, tx())
