"""Access-token policies (docs/spec/13-access-tokens.md 13.5, 13.6): parse strictly, evaluate.

Sans-IO and free of the EVM libraries: a component is checked against plain facts (the EOA
named by ``from``, its metadata, the request's options). Parsing refuses everything it does not
understand, so a policy can never grant more than its author meant (13.5).

Patterns are RE2 (google-re2): linear-time matching, the semantics of the Rust ``regex`` crate
the upstream Vault uses, so neither a hostile pattern nor a hostile payload can stall the enclave.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .limits import is_valid_unicode

MAX_PATTERN_BYTES = 1024
_DECIMAL = re.compile(r"-?[0-9]{1,1000}")  # ASCII digits only: int() alone accepts "١" and "1_0"
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX_QUANTITY = re.compile(r"0x[0-9a-fA-F]{1,64}")


class PolicyError(ValueError):
    """A policy that is not valid (answered ``invalid_input``, or a refused signed token)."""


def _re2():
    import re2  # google-re2: imported on first use, a Vault without tokens never needs it

    return re2


_re2_options = None


def compile_pattern(pattern: object, where: str):
    global _re2_options
    if not isinstance(pattern, str):
        raise PolicyError(f"{where} must be a string")
    if not is_valid_unicode(pattern):
        raise PolicyError(f"{where} holds a lone surrogate (not valid Unicode)")
    if len(pattern.encode()) > MAX_PATTERN_BYTES:
        raise PolicyError(f"{where} is longer than {MAX_PATTERN_BYTES} bytes")
    re2 = _re2()
    if _re2_options is None:
        options = re2.Options()
        options.log_errors = False  # a refused pattern is the caller's mistake, not an enclave log line
        options.max_mem = 8 << 20
        _re2_options = options
    try:
        return re2.compile(pattern, _re2_options)
    except (re2.error, UnicodeEncodeError):
        raise PolicyError(f"{where} is not a valid RE2 pattern (no back-references or look-around)") from None


def search(regex, text: str) -> bool:
    """RE2 works on UTF-8; a text with a lone surrogate has none, so no pattern is found in it."""
    try:
        return regex.search(text) is not None
    except UnicodeEncodeError:
        return False


# --- rules -----------------------------------------------------------------------------------------

_OPS = {"greaterThan": int.__gt__, "lessThan": int.__lt__, "equalTo": int.__eq__}


@dataclass(frozen=True)
class Rule:
    """``{"pattern"}`` (searched) or ``{"op", "value"}`` (big-integer comparison)."""

    regex: Any = None
    op: str | None = None
    value: int | None = None

    @property
    def is_number(self) -> bool:
        return self.op is not None

    def holds(self, subject: "Subject | None") -> bool:
        if subject is None:  # the field or key is absent: no rule holds for nothing
            return False
        if self.op is None:
            return search(self.regex, subject.text)
        return subject.number is not None and _OPS[self.op](subject.number, self.value)


def parse_rule(obj: object, where: str) -> Rule:
    if not isinstance(obj, dict):
        raise PolicyError(f"{where} must be a rule object")
    if set(obj) == {"pattern"}:
        return Rule(regex=compile_pattern(obj["pattern"], f"{where}.pattern"))
    if set(obj) == {"op", "value"}:
        if obj["op"] not in _OPS:
            raise PolicyError(f"{where}.op must be greaterThan, lessThan or equalTo")
        value = obj["value"]
        if type(value) is int:
            number = value
        elif isinstance(value, str) and _DECIMAL.fullmatch(value):
            number = int(value)
        else:
            raise PolicyError(f"{where}.value must be an integer or a string of decimal digits")
        return Rule(op=obj["op"], value=number)
    raise PolicyError(f"{where} must be {{pattern}} or {{op, value}}")


@dataclass(frozen=True)
class Subject:
    """A value as rules see it: its text (for patterns) and its integer (for number rules)."""

    text: str
    number: int | None = None

    @classmethod
    def quantity(cls, value: object) -> "Subject | None":
        number = parse_quantity(value)
        return None if number is None else cls(str(number), number)

    @classmethod
    def hex_text(cls, value: object) -> "Subject | None":
        return cls(value.lower()) if isinstance(value, str) else None

    @classmethod
    def metadata_value(cls, value: object) -> "Subject | None":
        if isinstance(value, bool):
            return cls("true" if value else "false")
        if isinstance(value, int):
            return cls(str(value), value)
        if isinstance(value, float):
            if not math.isfinite(value):
                return None
            if value.is_integer():
                return cls(str(int(value)), int(value))
            return cls(repr(value))
        if isinstance(value, str):
            return cls(value, int(value) if _DECIMAL.fullmatch(value) else None)
        return None


def parse_quantity(value: object) -> int | None:
    """A quantity as the EVM operations read it (12.3): 0x hex, decimal digits, or a JSON integer."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        if _HEX_QUANTITY.fullmatch(value):
            return int(value, 16)
        if _DECIMAL.fullmatch(value) and not value.startswith("-"):
            return int(value)
    return None


@dataclass(frozen=True)
class MetadataRule:
    key: str
    rule: Rule

    def holds(self, metadata: Mapping[str, object]) -> bool:
        return self.key in metadata and self.rule.holds(Subject.metadata_value(metadata[self.key]))


def _metadata_rules(obj: object, where: str) -> tuple[MetadataRule, ...]:
    if not isinstance(obj, list):
        raise PolicyError(f"{where} must be an array of {{key, rule}}")
    rules = []
    for i, item in enumerate(obj):
        if not isinstance(item, dict) or set(item) != {"key", "rule"} or not isinstance(item["key"], str):
            raise PolicyError(f"{where}[{i}] must be {{key: string, rule}}")
        rules.append(MetadataRule(item["key"], parse_rule(item["rule"], f"{where}[{i}].rule")))
    return tuple(rules)


# --- fields the payload rules may name (13.6) --------------------------------------------------------

QUANTITY, ADDRESS, BYTES = "quantity", "address", "bytes"

TRANSACTION_FIELDS = {
    **dict.fromkeys(("type", "chainId", "nonce", "gasPrice", "gasLimit", "maxFeePerGas", "maxPriorityFeePerGas",
                     "maxFeePerBlobGas", "value"), QUANTITY),
    "to": ADDRESS,
    "input": BYTES,
}
AUTHORIZATION_FIELDS = {"chainId": QUANTITY, "nonce": QUANTITY, "address": ADDRESS}
_USEROP_COMMON = {
    **dict.fromkeys(("nonce", "callGasLimit", "verificationGasLimit", "preVerificationGas", "maxFeePerGas",
                     "maxPriorityFeePerGas", "chainId"), QUANTITY),
    "sender": ADDRESS, "entrypoint": ADDRESS, "callData": BYTES,
}
USEROP_FIELDS = {
    "useropV06": {**_USEROP_COMMON, "initCode": BYTES, "paymasterAndData": BYTES},
    "useropV07": {**_USEROP_COMMON, "factory": ADDRESS, "factoryData": BYTES, "paymaster": ADDRESS,
                  "paymasterData": BYTES, "paymasterVerificationGasLimit": QUANTITY,
                  "paymasterPostOpGasLimit": QUANTITY},
}
# The entry points hashed when the user operation names none (12.3).
DEFAULT_ENTRY_POINTS = {"useropV06": "0x5ff137d4b0fdcd49dca30c7cf57e578a026d2789",
                        "useropV07": "0x0000000071727de22e5e9d8baf0edac6f37da032"}


def _subject(kind: str, value: object) -> Subject | None:
    if value is None:
        return None
    return Subject.quantity(value) if kind == QUANTITY else Subject.hex_text(value)


def _field_rule(fields: Mapping[str, str], name: object, rule_obj: object, where: str) -> Rule:
    if name not in fields:
        raise PolicyError(f"{where}: {name!r} is not a field a rule may name ({', '.join(fields)})")
    rule = parse_rule(rule_obj, f"{where}.{name}")
    if rule.is_number and fields[name] != QUANTITY:
        raise PolicyError(f"{where}.{name}: a number rule needs a quantity field")
    return rule


def _transaction_rules(obj: object, where: str) -> tuple[tuple[str, tuple[Rule, ...]], ...]:
    if not isinstance(obj, dict):
        raise PolicyError(f"{where} must be an object of field → [rule]")
    out = []
    for name, rules in obj.items():
        if name not in TRANSACTION_FIELDS:
            raise PolicyError(f"{where}: {name!r} is not a field a rule may name ({', '.join(TRANSACTION_FIELDS)})")
        if not isinstance(rules, list):
            raise PolicyError(f"{where}.{name} must be an array of rules")
        out.append((name, tuple(_field_rule(TRANSACTION_FIELDS, name, rule, f"{where}[{i}]")
                                for i, rule in enumerate(rules))))
    return tuple(out)


def _single_rules(obj: object, fields: Mapping[str, str], where: str) -> tuple[tuple[str, Rule], ...]:
    if not isinstance(obj, dict):
        raise PolicyError(f"{where} must be an object of field → rule")
    return tuple((name, _field_rule(fields, name, rule, where)) for name, rule in obj.items())


def _structured_rules(obj: object, where: str) -> tuple[tuple[str, tuple[tuple[str, Rule], ...]], ...]:
    if not isinstance(obj, dict) or not set(obj) <= set(USEROP_FIELDS):
        raise PolicyError(f"{where} must be an object with useropV06 and/or useropV07")
    return tuple((version, _single_rules(rules, USEROP_FIELDS[version], f"{where}.{version}"))
                 for version, rules in obj.items())


def _allowlist(obj: object, where: str) -> frozenset[str]:
    if not isinstance(obj, list) or not all(isinstance(a, str) and _ADDRESS.fullmatch(a) for a in obj):
        raise PolicyError(f"{where} must be an array of 0x-prefixed 20-byte hex addresses")
    return frozenset(a.lower() for a in obj)


def _chain_id(obj: object, where: str) -> int:
    if type(obj) is not int or obj < 0:
        raise PolicyError(f"{where} must be a non-negative integer")
    return obj


def _reveal(obj: object, where: str) -> bool:
    if not isinstance(obj, bool):
        raise PolicyError(f"{where} must be a boolean")
    return obj


def _pubkeys(obj: object, where: str) -> frozenset[str]:
    """Base58 Solana public keys, each in its one canonical spelling (14.4)."""
    from .solana import SolanaInputError, parse_pubkey

    if not isinstance(obj, list):
        raise PolicyError(f"{where} must be an array of base58 public keys")
    try:
        return frozenset(parse_pubkey(key, f"{where}[{i}]") for i, key in enumerate(obj))
    except SolanaInputError as error:
        raise PolicyError(str(error)) from None


@dataclass(frozen=True)
class TransactionPatterns:
    """``SolanaTransactionPatterns`` (14.4): each member present restricts, absent ones do not."""

    programs: tuple[str, frozenset[str]] | None = None  # ("allow" | "deny", program ids)
    writable_accounts: tuple[str, frozenset[str]] | None = None
    required_cosigners: frozenset[str] = frozenset()
    max_instructions: int | None = None
    can_pay_fees: bool | None = None


def _access_list(obj: object, where: str, member: str) -> tuple[str, frozenset[str]]:
    if not isinstance(obj, dict) or set(obj) != {"type", member} or obj["type"] not in ("allow", "deny"):
        raise PolicyError(f"{where} must be {{type: allow | deny, {member}: [base58 keys]}}")
    return obj["type"], _pubkeys(obj[member], f"{where}.{member}")


def _transaction_patterns(obj: object, where: str) -> TransactionPatterns:
    known = {"programs", "writableAccounts", "requiredCosigners", "maxInstructions", "canPayFees"}
    if not isinstance(obj, dict) or not set(obj) <= known:
        raise PolicyError(f"{where} must be an object with only {', '.join(sorted(known))}")
    maximum = obj.get("maxInstructions")
    if maximum is not None and (type(maximum) is not int or maximum < 0):
        raise PolicyError(f"{where}.maxInstructions must be a non-negative integer")
    if "canPayFees" in obj and not isinstance(obj["canPayFees"], bool):
        raise PolicyError(f"{where}.canPayFees must be a boolean")
    return TransactionPatterns(
        programs=_access_list(obj["programs"], f"{where}.programs", "programs") if "programs" in obj else None,
        writable_accounts=(_access_list(obj["writableAccounts"], f"{where}.writableAccounts", "accounts")
                           if "writableAccounts" in obj else None),
        required_cosigners=_pubkeys(obj.get("requiredCosigners", []), f"{where}.requiredCosigners"),
        max_instructions=maximum,
        can_pay_fees=obj.get("canPayFees"),
    )


def _no_solana_payload_fields(obj: object, where: str) -> tuple:
    # The client's type has payloadPatterns on solana:signTransaction, but names no field a rule
    # could read in a Solana transaction; only an empty object is accepted (14.4).
    if obj != {}:
        raise PolicyError(f"{where}: Solana transactions have no payload field a rule may name; use "
                          "transactionPatterns")
    return ()


# member → (parser, required), per component type (the client's PolicyComponent)
_SIGN_COMMON = {"allowlist": (_allowlist, False), "metadataPatterns": (_metadata_rules, False)}
COMPONENT_MEMBERS: dict[str, dict[str, tuple[Any, bool]]] = {
    "eoa:create": {"requiredMetadataPatterns": (_metadata_rules, False),
                   "allowedMetadataPatterns": (_metadata_rules, False)},
    "eoa:read": {"metadataPatterns": (_metadata_rules, False)},
    "eoa:signTransaction": {**_SIGN_COMMON, "payloadPatterns": (_transaction_rules, True)},
    "eoa:signMessage": {**_SIGN_COMMON, "chainId": (_chain_id, False),
                        "messagePattern": (compile_pattern, False)},
    "eoa:signTypedData": dict(_SIGN_COMMON),
    "eoa:signAuthorization": {**_SIGN_COMMON,
                              "payloadPatterns": (lambda o, w: _single_rules(o, AUTHORIZATION_FIELDS, w), False)},
    "eoa:signStructuredMessage": {**_SIGN_COMMON, "structuredPatterns": (_structured_rules, True)},
    "accessToken:read": {"metadataPatterns": (_metadata_rules, False), "revealSensitive": (_reveal, True)},
    "solana:create": {"requiredMetadataPatterns": (_metadata_rules, False),
                      "allowedMetadataPatterns": (_metadata_rules, False)},
    "solana:read": {"metadataPatterns": (_metadata_rules, False)},
    "solana:signTransaction": {"allowlist": (_pubkeys, False), "metadataPatterns": (_metadata_rules, False),
                               "payloadPatterns": (_no_solana_payload_fields, False),
                               "transactionPatterns": (_transaction_patterns, False)},
    "solana:signMessage": {"allowlist": (_pubkeys, False), "metadataPatterns": (_metadata_rules, False),
                           "messagePattern": (compile_pattern, False)},
}


@dataclass(frozen=True)
class Component:
    type: str
    members: Mapping[str, Any]

    def get(self, name: str, default: Any = ()) -> Any:
        return self.members.get(name, default)


def parse_component(obj: object, where: str) -> Component:
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise PolicyError(f"{where} must be an object with a string type")
    spec = COMPONENT_MEMBERS.get(obj["type"])
    if spec is None:
        raise PolicyError(f"{where}.type {obj['type']!r} is not a policy this Vault defines")
    members = {}
    for name, value in obj.items():
        if name == "type":
            continue
        if name not in spec:
            raise PolicyError(f"{where}: member {name!r} is not part of a {obj['type']} policy")
        members[name] = spec[name][0](value, f"{where}.{name}")
    missing = [name for name, (_, required) in spec.items() if required and name not in obj]
    if missing:
        raise PolicyError(f"{where}: a {obj['type']} policy needs {', '.join(missing)}")
    return Component(obj["type"], members)


def parse_policies(obj: object, where: str = "policies", *, allow_empty: bool = False) -> tuple[Component, ...]:
    if not isinstance(obj, list) or (not obj and not allow_empty):
        raise PolicyError(f"{where} must be a non-empty array of policy components")
    return tuple(parse_component(item, f"{where}[{i}]") for i, item in enumerate(obj))


# --- evaluation (13.6) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What a component is checked against: the EOA (address, metadata) and the request's options."""

    metadata: Mapping[str, object]
    options: Mapping[str, object]
    address: str | None = None  # the signing key: an EOA's lowercase address, a Solana base58 key
    transaction: Any = None  # solana:signTransaction: the parsed transaction (solana.Transaction)


def _all_hold(rules: Iterable[MetadataRule], metadata: Mapping[str, object]) -> bool:
    return all(rule.holds(metadata) for rule in rules)


def _create_holds(c: Component, metadata: Mapping[str, object]) -> bool:
    required = c.get("requiredMetadataPatterns")
    allowed = c.get("allowedMetadataPatterns")
    if not _all_hold(required, metadata):
        return False
    if allowed:
        permitted = (*required, *allowed)
        for key, value in metadata.items():
            subject = Subject.metadata_value(value)
            if not any(r.key == key and r.rule.holds(subject) for r in permitted):
                return False
    return True


def _named_rules_hold(rules, values: Mapping[str, object], fields: Mapping[str, str]) -> bool:
    return all(rule.holds(_subject(fields[name], values.get(name))) for name, rule in rules)


def _transaction_value(tx: dict, name: str) -> object:
    value = tx.get(name)
    # The type as encoded, not as sent: the client's 0x05 is signed as EIP-7702's 0x04 (12.3), so
    # a rule on `type` must not allow or deny one transaction by which alias named it.
    if name == "type" and parse_quantity(value) == 5:
        return 4
    return value


def _transaction_holds(c: Component, tx: object) -> bool:
    if not isinstance(tx, dict):
        return False
    return all(
        all(rule.holds(_subject(TRANSACTION_FIELDS[name], _transaction_value(tx, name))) for rule in rules)
        for name, rules in c.get("payloadPatterns")
    )


def _structured_holds(c: Component, options: Mapping[str, object]) -> bool:
    structured = options.get("structuredMessage")
    if not isinstance(structured, dict) or len(structured) != 1:
        return False
    (version, op), = structured.items()
    if not isinstance(op, dict) or version not in USEROP_FIELDS:
        return False
    rules = dict(c.get("structuredPatterns")).get(version)
    if rules is None:  # a version the component does not name is not restricted (13.6)
        return True
    values = {**op, "chainId": options.get("chainId"), "entrypoint": op.get("entrypoint", DEFAULT_ENTRY_POINTS[version])}
    return _named_rules_hold(rules, values, USEROP_FIELDS[version])


def _solana_transaction_holds(patterns: "TransactionPatterns | None", tx, signer: str | None) -> bool:
    """14.4. Addresses loaded from lookup tables are unknown inside the enclave, so a rule that would
    need them (a program or writable account from a table) does not hold: unknown is never allowed."""
    if patterns is None:
        return True
    if tx is None:
        return False
    if patterns.programs is not None:
        kind, listed = patterns.programs
        if any(program is None for program in tx.program_ids):
            return False
        if kind == "allow" and not all(program in listed for program in tx.program_ids):
            return False
        if kind == "deny" and any(program in listed for program in tx.program_ids):
            return False
    if patterns.writable_accounts is not None:
        kind, listed = patterns.writable_accounts
        if tx.unresolved_writable:
            return False
        others = [account for account in tx.writable if account != signer]  # the signer's own is exempt
        if kind == "allow" and not all(account in listed for account in others):
            return False
        if kind == "deny" and any(account in listed for account in others):
            return False
    if not patterns.required_cosigners <= set(tx.signers):
        return False
    if patterns.max_instructions is not None and tx.instruction_count > patterns.max_instructions:
        return False
    if patterns.can_pay_fees is False and tx.fee_payer == signer:
        return False
    return True


def component_holds(c: Component, facts: Facts) -> bool:
    """Every member of ``c`` holds for the request described by ``facts`` (13.6, 14.4)."""
    if c.type in ("eoa:create", "solana:create"):
        return _create_holds(c, facts.metadata)
    allowlist = c.get("allowlist")
    if allowlist and facts.address not in allowlist:
        return False
    if not _all_hold(c.get("metadataPatterns"), facts.metadata):
        return False
    options = facts.options
    if c.type == "eoa:signMessage":
        if "chainId" in c.members and options.get("chainId") != c.members["chainId"]:
            return False
        pattern = c.get("messagePattern", None)
        message = options.get("message")
        if pattern is not None and not (isinstance(message, str) and search(pattern, message)):
            return False
    elif c.type == "eoa:signTransaction":
        return _transaction_holds(c, options.get("transaction"))
    elif c.type == "eoa:signAuthorization":
        authorization = options.get("authorization")
        if not isinstance(authorization, dict):
            return False
        return _named_rules_hold(c.get("payloadPatterns"), authorization, AUTHORIZATION_FIELDS)
    elif c.type == "eoa:signStructuredMessage":
        return _structured_holds(c, options)
    elif c.type == "solana:signMessage":
        pattern = c.get("messagePattern", None)
        message = options.get("message")
        if pattern is not None and not (isinstance(message, str) and search(pattern, message)):
            return False
    elif c.type == "solana:signTransaction":
        return _solana_transaction_holds(c.get("transactionPatterns", None), facts.transaction, facts.address)
    return True


def allows(policies: Iterable[Component], component_type: str, facts: Facts) -> bool:
    """At least one component of the type holds (components are alternatives, 13.4)."""
    return any(c.type == component_type and component_holds(c, facts) for c in policies)


def has_type(policies: Iterable[Component], component_type: str) -> bool:
    return any(c.type == component_type for c in policies)
