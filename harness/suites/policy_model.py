"""An independent model of access-token policies (spec §13.5, §13.6), kept by the harness.

It answers two questions from the spec text alone, without asking any Vault:

* is this policy component valid (§13.5)? -- ``component_problem`` names the first defect;
* does a token with these policies allow this request (§13.4, §13.6)? -- ``allows`` for one
  operation, ``shows`` for one item of a list.

Regular expressions follow RE2 syntax and semantics (§13.5) through google-re2 (a project
dependency). Should it be missing, Python's ``re`` stands in, and only for patterns of a small
common subset read as RE2 reads them (``_python_equivalent``); a pattern outside it raises
PatternUnknown, never a guess.
"""

from __future__ import annotations

import json
import re

try:  # google-re2: the engine family the spec names
    import re2 as _re2

    _QUIET = _re2.Options()
    _QUIET.log_errors = False  # a pattern RE2 refuses is a verdict here, not a line on the user's stderr
except ImportError:  # pragma: no cover - depends on the environment
    _re2 = None

PATTERN_LIMIT = 1024  # bytes of UTF-8 (§13.5)

# Members per component type (§13.5, the client's PolicyComponent): (allowed, required).
_SIGN_TYPES = ("eoa:signMessage", "eoa:signTypedData", "eoa:signTransaction", "eoa:signAuthorization",
               "eoa:signStructuredMessage")
COMPONENT_MEMBERS: dict[str, tuple[frozenset, frozenset]] = {
    "eoa:create": (frozenset({"requiredMetadataPatterns", "allowedMetadataPatterns"}), frozenset()),
    "eoa:read": (frozenset({"metadataPatterns"}), frozenset()),
    "eoa:signTransaction": (frozenset({"allowlist", "metadataPatterns", "payloadPatterns"}),
                            frozenset({"payloadPatterns"})),
    "eoa:signMessage": (frozenset({"allowlist", "metadataPatterns", "chainId", "messagePattern"}), frozenset()),
    "eoa:signTypedData": (frozenset({"allowlist", "metadataPatterns"}), frozenset()),
    "eoa:signAuthorization": (frozenset({"allowlist", "metadataPatterns", "payloadPatterns"}), frozenset()),
    "eoa:signStructuredMessage": (frozenset({"allowlist", "metadataPatterns", "structuredPatterns"}),
                                  frozenset({"structuredPatterns"})),
    "accessToken:read": (frozenset({"metadataPatterns", "revealSensitive"}), frozenset({"revealSensitive"})),
}

# The component type that governs each operation a token may perform (§13.4).
OPERATION_COMPONENT = {
    "eoa:create": "eoa:create",
    "eoa:list": "eoa:read",
    **{name: name for name in _SIGN_TYPES},
    "accessToken:list": "accessToken:read",
}
TOKEN_OPERATIONS = tuple(OPERATION_COMPONENT)

QUANTITY, ADDRESS, BYTES = "quantity", "address", "bytes"
# Transaction fields by the client's transaction-types.ts names (§13.6).
TRANSACTION_FIELDS = {
    **dict.fromkeys(("type", "chainId", "nonce", "gasPrice", "gasLimit", "maxFeePerGas", "maxPriorityFeePerGas",
                     "maxFeePerBlobGas", "value"), QUANTITY),
    "to": ADDRESS,
    "input": BYTES,
}
AUTHORIZATION_FIELDS = {"chainId": QUANTITY, "nonce": QUANTITY, "address": ADDRESS}
_USEROP_KINDS = {
    **dict.fromkeys(("nonce", "callGasLimit", "verificationGasLimit", "preVerificationGas", "maxFeePerGas",
                     "maxPriorityFeePerGas", "paymasterVerificationGasLimit", "paymasterPostOpGasLimit", "chainId"),
                    QUANTITY),
    **dict.fromkeys(("sender", "factory", "paymaster", "entrypoint"), ADDRESS),
    **dict.fromkeys(("initCode", "callData", "paymasterAndData", "factoryData", "paymasterData"), BYTES),
}
# The rule members each version takes (the client's UserOperationV06Rules / V07Rules).
USEROP_FIELDS = {
    "useropV06": {name: _USEROP_KINDS[name] for name in (
        "sender", "nonce", "initCode", "callData", "callGasLimit", "verificationGasLimit", "preVerificationGas",
        "maxFeePerGas", "maxPriorityFeePerGas", "paymasterAndData", "chainId", "entrypoint")},
    "useropV07": {name: _USEROP_KINDS[name] for name in (
        "sender", "nonce", "factory", "factoryData", "callData", "callGasLimit", "verificationGasLimit",
        "preVerificationGas", "maxFeePerGas", "maxPriorityFeePerGas", "paymaster", "paymasterVerificationGasLimit",
        "paymasterPostOpGasLimit", "paymasterData", "chainId", "entrypoint")},
}
# Canonical EntryPoint deployments, hashed when the operation names none (§12.3).
DEFAULT_ENTRYPOINTS = {"useropV06": "0x5ff137d4b0fdcd49dca30c7cf57e578a026d2789",
                       "useropV07": "0x0000000071727de22e5e9d8baf0edac6f37da032"}
NUMBER_OPS = ("greaterThan", "lessThan", "equalTo")

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}\Z")
_DECIMAL = re.compile(r"^-?[0-9]+\Z")
_DIGITS = re.compile(r"^[0-9]+\Z")
_HEX_QUANTITY = re.compile(r"^0x[0-9a-fA-F]+\Z")
# Without RE2, the patterns this model will judge: literals, simple classes, groups, alternation,
# the usual quantifiers and anchors. Python's engine reads them as RE2 does once its \d, \w, \s
# are made ASCII (re.ASCII) and each `$` becomes `\Z` (RE2's `$` never matches before a final
# newline); no `(?` construct is admitted at all.
_SAFE_TOKEN = re.compile(
    r"[A-Za-z0-9 _!@#%&=:;,'\"<>~-]"  # literals
    r"|\\[.dDwWsS*+?()\[\]{}|^$\\]"  # escapes
    r"|[.*+?()|^$]"  # operators
    r"|\[\^?(?:[A-Za-z0-9_-]|\\[dws])+\]"  # simple classes
    r"|\{[0-9]+(?:,[0-9]*)?\}")  # counted repeats


def _python_equivalent(pattern: str) -> re.Pattern:
    """The Python regex that reads ``pattern`` as RE2 does, or PatternUnknown outside the subset."""
    tokens = [match.group() for match in _SAFE_TOKEN.finditer(pattern)]
    if "".join(tokens) != pattern or "(?" in pattern:
        raise PatternUnknown(pattern)
    return re.compile("".join("\\Z" if token == "$" else token for token in tokens), re.ASCII)


class PatternUnknown(Exception):
    """The model cannot judge this pattern (without RE2) or this text (no UTF-8 form); the caller
    must not generate such requests, or must accept either verdict."""


# ---- regular expressions ------------------------------------------------------------------------

def pattern_problem(pattern) -> str | None:
    """Why ``pattern`` is not a valid rule pattern (§13.5), or None."""
    if not isinstance(pattern, str):
        return f"a pattern must be a string, not {type(pattern).__name__}"
    if not _has_utf8(pattern):
        return "a pattern with an unpaired surrogate has no UTF-8 form, so RE2 cannot compile it"
    if len(pattern.encode("utf-8")) > PATTERN_LIMIT:
        return f"a pattern is limited to {PATTERN_LIMIT} bytes"
    if _re2 is not None:
        try:
            _re2.compile(pattern, _QUIET)
        except Exception as error:  # re2.error: RE2 does not compile it
            return f"the pattern does not compile under RE2 ({str(error)[:60]})"
        return None
    try:
        _python_equivalent(pattern)
    except re.error as error:
        return f"the pattern does not compile ({error})"
    return None


def _has_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def pattern_found(pattern: str, text: str) -> bool:
    """A pattern *searches* (§13.5): it holds when found anywhere in ``text``. Text without a
    UTF-8 form (an unpaired surrogate) is undecided: the spec does not say how RE2 reads it."""
    if not _has_utf8(text):
        raise PatternUnknown(f"text without a UTF-8 form: {text!r}")
    if _re2 is not None:
        return _re2.search(pattern, text) is not None
    return _python_equivalent(pattern).search(text) is not None


# ---- validity (§13.5) ---------------------------------------------------------------------------

def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def rule_problem(rule, kind: str | None = None) -> str | None:
    """Why ``rule`` is not a valid rule for a field of ``kind`` (None: a metadata value), or None."""
    if not isinstance(rule, dict):
        return "a rule must be an object"
    if set(rule) == {"pattern"}:
        return pattern_problem(rule["pattern"])
    if set(rule) == {"op", "value"}:
        if rule["op"] not in NUMBER_OPS:
            return f"unknown number op {rule['op']!r}"
        value = rule["value"]
        if not (_is_int(value) or (isinstance(value, str) and _DECIMAL.match(value))):
            return "a number rule's value must be a JSON integer or a string of decimal digits"
        if kind is not None and kind != QUANTITY:
            return f"a number rule on a field that is not a quantity ({kind})"
        return None
    return f"a rule is {{pattern}} or {{op, value}}, not {sorted(rule)}"


def _metadata_rules_problem(rules, member: str) -> str | None:
    if not isinstance(rules, list):
        return f"{member} must be an array"
    for rule in rules:
        if not isinstance(rule, dict) or set(rule) != {"key", "rule"} or not isinstance(rule["key"], str):
            return f"{member}: a metadata rule is exactly {{key: string, rule}}"
        problem = rule_problem(rule["rule"])
        if problem:
            return f"{member}: {problem}"
    return None


def _field_rules_problem(rules: dict, fields: dict, member: str, *, arrays: bool) -> str | None:
    if not isinstance(rules, dict):
        return f"{member} must be an object"
    for name, value in rules.items():
        if name not in fields:
            return f"{member}: unknown field {name!r}"
        for rule in (value if arrays and isinstance(value, list) else [value]):
            problem = rule_problem(rule, fields[name])
            if problem:
                return f"{member}.{name}: {problem}"
        if arrays and not isinstance(value, list):
            return f"{member}.{name} must be an array of rules"
    return None


def component_problem(component) -> str | None:
    """Why ``component`` is not a valid policy component (§13.5), or None."""
    if not isinstance(component, dict):
        return "a component must be an object"
    kind = component.get("type")
    if kind not in COMPONENT_MEMBERS:
        return f"unknown component type {kind!r}"
    allowed, required = COMPONENT_MEMBERS[kind]
    extra = set(component) - allowed - {"type"}
    if extra:
        return f"unknown member(s) {sorted(extra)} for {kind}"
    missing = required - set(component)
    if missing:
        return f"missing required member(s) {sorted(missing)} for {kind}"
    for member, value in component.items():
        if member == "type":
            continue
        if member == "allowlist":
            if not isinstance(value, list) or not all(isinstance(a, str) and _ADDRESS.match(a) for a in value):
                return "allowlist must be an array of 20-byte 0x hex addresses"
        elif member in ("metadataPatterns", "requiredMetadataPatterns", "allowedMetadataPatterns"):
            problem = _metadata_rules_problem(value, member)
            if problem:
                return problem
        elif member == "messagePattern":
            problem = pattern_problem(value)
            if problem:
                return f"messagePattern: {problem}"
        elif member == "chainId":
            if not _is_int(value) or value < 0:
                return "chainId must be a non-negative integer"
        elif member == "payloadPatterns":
            fields, arrays = ((TRANSACTION_FIELDS, True) if kind == "eoa:signTransaction"
                              else (AUTHORIZATION_FIELDS, False))
            problem = _field_rules_problem(value, fields, member, arrays=arrays)
            if problem:
                return problem
        elif member == "structuredPatterns":
            if not isinstance(value, dict):
                return "structuredPatterns must be an object"
            for version, rules in value.items():
                if version not in USEROP_FIELDS:
                    return f"structuredPatterns: unknown version {version!r}"
                problem = _field_rules_problem(rules, USEROP_FIELDS[version], f"structuredPatterns.{version}",
                                               arrays=False)
                if problem:
                    return problem
        elif member == "revealSensitive":
            if not isinstance(value, bool):
                return "revealSensitive must be a boolean"
    return None


def policies_problem(policies) -> str | None:
    """Why ``policies`` is not a valid policies array (§13.1: non-empty, every component valid)."""
    if not isinstance(policies, list) or not policies:
        return "policies must be a non-empty array"
    for index, component in enumerate(policies):
        problem = component_problem(component)
        if problem:
            return f"component {index}: {problem}"
    return None


# ---- values and rules (§13.6) -------------------------------------------------------------------

def quantity(value) -> int | None:
    """A transaction or user-operation quantity as sent: 0x hex, decimal string or JSON integer."""
    if _is_int(value):
        return value
    if isinstance(value, str):
        if _HEX_QUANTITY.match(value):
            return int(value, 16)
        if _DIGITS.match(value):
            return int(value)
    return None


def metadata_text(value) -> str:
    """The text a pattern searches in a metadata value (§13.6)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_int(value):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return value if isinstance(value, str) else json.dumps(value)


def metadata_integer(value) -> int | None:
    """The integer a number rule compares for a metadata value: a JSON integer or a digit string."""
    if _is_int(value):
        return value
    if isinstance(value, str) and _DIGITS.match(value):
        return int(value)
    return None


def number_holds(rule: dict, number: int | None) -> bool:
    if number is None:
        return False
    bound = int(rule["value"])  # exact: Python integers, never floats
    return {"greaterThan": number > bound, "lessThan": number < bound, "equalTo": number == bound}[rule["op"]]


def rule_holds(rule: dict, *, text: str | None, number: int | None) -> bool:
    """A rule for one value (§13.6); ``text`` None means the value is absent (the rule fails)."""
    if text is None:
        return False
    if "pattern" in rule:
        return pattern_found(rule["pattern"], text)
    return number_holds(rule, number)


def _metadata_rule_holds(rule: dict, metadata: dict) -> bool:
    if rule["key"] not in metadata:
        return False
    value = metadata[rule["key"]]
    return rule_holds(rule["rule"], text=metadata_text(value), number=metadata_integer(value))


def field_value(kind: str, value) -> tuple[str | None, int | None]:
    """(text, integer) of a payload field of ``kind``; (None, None) when it has no value."""
    if value is None:
        return None, None
    if kind == QUANTITY:
        number = quantity(value)
        return (None, None) if number is None else (str(number), number)
    if isinstance(value, str):
        return value.lower(), None
    return None, None


def _fields_hold(rules: dict, values: dict, kinds: dict, *, arrays: bool) -> bool:
    for name, rule_or_rules in rules.items():
        text, number = field_value(kinds[name], values.get(name))
        for rule in (rule_or_rules if arrays else [rule_or_rules]):
            if not rule_holds(rule, text=text, number=number):
                return False
    return True


def transaction_values(transaction: dict) -> dict:
    """The values payloadPatterns are matched against (§13.6): the transaction's fields, with
    ``type`` the type the Vault encodes, so the client's 7702 ``0x05`` is 4 (§12.3)."""
    values = dict(transaction) if isinstance(transaction, dict) else {}
    if quantity(values.get("type")) == 5:
        values["type"] = 4
    return values


def useropv_values(version: str, op: dict, chain_id) -> dict:
    """The values structuredPatterns are matched against (§13.6): the op's fields, the request's
    chainId, and the entrypoint hashed (its default when absent)."""
    values = {name: op.get(name) for name in USEROP_FIELDS[version] if name not in ("chainId", "entrypoint")}
    values["chainId"] = chain_id
    values["entrypoint"] = op.get("entrypoint") or DEFAULT_ENTRYPOINTS[version]
    return values


# ---- evaluating a component (§13.6) -------------------------------------------------------------

def component_holds(component: dict, operation: str, options: dict, eoa_metadata: dict | None = None) -> bool:
    """Whether one valid component of the operation's type is satisfied by the request.

    ``options`` are the request's options; ``eoa_metadata`` the metadata of the EOA named by
    ``from`` (signing), or of the listed item (lists)."""
    for member, value in component.items():
        if member in ("type", "revealSensitive"):
            continue
        if member == "allowlist":
            sender = str(options.get("from", "")).lower()
            if value and sender not in {address.lower() for address in value}:
                return False
        elif member == "metadataPatterns":
            if not all(_metadata_rule_holds(rule, eoa_metadata or {}) for rule in value):
                return False
        elif member == "requiredMetadataPatterns":
            if not all(_metadata_rule_holds(rule, options.get("metadata") or {}) for rule in value):
                return False
        elif member == "allowedMetadataPatterns":
            if value and not _create_metadata_allowed(component, options.get("metadata") or {}):
                return False
        elif member == "messagePattern":
            message = options.get("message")
            if not isinstance(message, str) or not pattern_found(value, message):
                return False
        elif member == "chainId":
            if "chainId" not in options or not _is_int(options["chainId"]) or options["chainId"] != value:
                return False
        elif member == "payloadPatterns" and operation == "eoa:signTransaction":
            if not _fields_hold(value, transaction_values(options.get("transaction") or {}), TRANSACTION_FIELDS,
                                arrays=True):
                return False
        elif member == "payloadPatterns":
            if not _fields_hold(value, options.get("authorization") or {}, AUTHORIZATION_FIELDS, arrays=False):
                return False
        elif member == "structuredPatterns":
            message = options.get("structuredMessage") or {}
            for version, rules in value.items():
                if version in message:
                    values = useropv_values(version, message[version], options.get("chainId"))
                    if not _fields_hold(rules, values, USEROP_FIELDS[version], arrays=False):
                        return False
    return True


def _create_metadata_allowed(component: dict, metadata: dict) -> bool:
    """allowedMetadataPatterns (non-empty): every key is named by a required or allowed rule and
    its value satisfies one such rule of that key."""
    rules = list(component.get("requiredMetadataPatterns") or []) + list(component["allowedMetadataPatterns"])
    for key, value in metadata.items():
        own = [rule["rule"] for rule in rules if rule["key"] == key]
        if not any(rule_holds(rule, text=metadata_text(value), number=metadata_integer(value)) for rule in own):
            return False
    return True


def has_component(policies: list, operation: str) -> bool:
    wanted = OPERATION_COMPONENT[operation]
    return any(component.get("type") == wanted for component in policies)


def allows(policies: list, operation: str, options: dict, eoa_metadata: dict | None = None) -> bool:
    """Whether a token with ``policies`` may perform the request (§13.4: at least one component of
    the operation's type holds; every member of that one component holds)."""
    wanted = OPERATION_COMPONENT[operation]
    return any(component.get("type") == wanted and component_holds(component, operation, options, eoa_metadata)
               for component in policies)


def shows(policies: list, operation: str, item_metadata: dict) -> bool:
    """Whether a list (eoa:list, accessToken:list) made with ``policies`` shows an item."""
    return allows(policies, operation, {}, item_metadata)


def all_allow(policy_sets: list[list], operation: str, options: dict, eoa_metadata: dict | None = None) -> bool:
    """A signed token: the base token's and the signed token's policies must both allow (§13.7)."""
    return all(allows(policies, operation, options, eoa_metadata) for policies in policy_sets)


def all_show(policy_sets: list[list], operation: str, item_metadata: dict) -> bool:
    return all(shows(policies, operation, item_metadata) for policies in policy_sets)
