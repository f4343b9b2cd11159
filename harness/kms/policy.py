"""IAM-style key policy parsing and evaluation for the mocked KMS (KMS.md section 2).

Pure: no IO, no clock. ``parse_policy(text)`` turns a policy document into :class:`Policy`
(raising :class:`PolicyError` for anything AWS would refuse as a malformed policy);
``evaluate(policy, request)`` answers one request with a :class:`Decision`.

Semantics implemented (the AWS IAM policy evaluation logic, restricted to one resource policy):

- An explicit ``Deny`` that matches wins over every ``Allow``; no matching ``Allow`` is an
  implicit deny.
- ``Action``/``NotAction`` match case-insensitively with ``*`` and ``?`` wildcards (``kms:*``,
  ``kms:Generate*``); ``Resource``/``NotResource`` match case-sensitively with the same wildcards.
- ``Principal``/``NotPrincipal``: ``"*"``, ``{"AWS": "*"}``, ``{"AWS": ARN or [ARN, ...]}``, a
  bare 12-digit account id. ``arn:aws:iam::ACCOUNT:root`` (or the bare account id) matches every
  principal of that account; a role ARN also matches that role's assumed-role sessions.
- Conditions: every operator in a block must hold, every key under an operator must hold, and
  for one key the listed values are alternatives (any one matching suffices). A positive operator
  on a missing key is false, a negated one (``StringNot...``, ``NumericNotEquals``, ``ArnNot...``)
  is true; ``...IfExists`` makes any operator true on a missing key; ``Null`` tests presence.
  ``ForAnyValue:``/``ForAllValues:`` apply the operator across a multi-valued context key
  (``ForAllValues`` is true on a missing or empty key, ``ForAnyValue`` false).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Decision", "Policy", "PolicyError", "Request", "Statement", "evaluate", "parse_policy",
           "OPERATORS"]


class PolicyError(ValueError):
    """The policy document is malformed (AWS: ``MalformedPolicyDocumentException``)."""


@dataclass(frozen=True)
class Condition:
    """One ``operator: {key: values}`` entry, the operator split into its parts."""

    operator: str  # as written, e.g. "ForAnyValue:StringEqualsIgnoreCase"
    base: str  # e.g. "StringEqualsIgnoreCase"
    if_exists: bool
    set_op: str | None  # "ForAnyValue", "ForAllValues" or None
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    index: int
    sid: str | None
    effect: str  # "Allow" | "Deny"
    principal: tuple[str, ...] | None  # None when the statement uses NotPrincipal
    not_principal: tuple[str, ...] | None
    action: tuple[str, ...] | None
    not_action: tuple[str, ...] | None
    resource: tuple[str, ...] | None
    not_resource: tuple[str, ...] | None
    conditions: tuple[Condition, ...] = ()

    @property
    def label(self) -> str | int:
        """The Sid, or the statement's 0-based index when it has none."""
        return self.sid if self.sid is not None else self.index


@dataclass(frozen=True)
class Policy:
    version: str | None
    statements: tuple[Statement, ...]
    text: str = field(repr=False, default="")


@dataclass(frozen=True)
class Request:
    """What is asked: who (principal ARN), which action (``kms:Decrypt``), on what resource
    (key ARN), and the request context (condition key -> value or list of values)."""

    principal: str
    action: str
    resource: str
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    statement: str | int | None  # Sid or index of the deciding statement; None for implicit deny
    reason: str
    explicit_deny: bool = False
    #: Statements whose principal and action matched but that did not apply (resource or
    #: condition), with why: on an implicit deny these name what nearly allowed the request.
    near_misses: tuple[tuple[str | int, str], ...] = ()


# --- parsing -------------------------------------------------------------------------------------

_STRING_OPS = ("StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
               "StringLike", "StringNotLike")
_NUMERIC_OPS = ("NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
                "NumericGreaterThan", "NumericGreaterThanEquals")
_ARN_OPS = ("ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike")
_OTHER_OPS = ("Bool", "Null", "BinaryEquals")
#: Every base operator name the parser accepts.
OPERATORS = _STRING_OPS + _NUMERIC_OPS + _ARN_OPS + _OTHER_OPS
_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "NumericNotEquals", "ArnNotEquals",
            "ArnNotLike"}
_ACCOUNT = re.compile(r"^\d{12}$")


def _strings(value: Any, what: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and (value or allow_empty):
        return tuple(value)
    raise PolicyError(f"{what} must be a string or a non-empty list of strings")


def _condition_values(value: Any, what: str) -> tuple[str, ...]:
    # AWS accepts booleans and numbers in condition values and compares their string form.
    items = value if isinstance(value, list) else [value]
    if not items:
        raise PolicyError(f"{what} has no values")
    out = []
    for v in items:
        if isinstance(v, bool):
            out.append("true" if v else "false")
        elif isinstance(v, (str, int, float)):
            out.append(str(v))
        else:
            raise PolicyError(f"{what} values must be strings, numbers or booleans")
    return tuple(out)


def _principals(value: Any, what: str) -> tuple[str, ...]:
    if value == "*":
        return ("*",)
    if not isinstance(value, dict) or not value:
        raise PolicyError(f"{what} must be \"*\" or an object such as {{\"AWS\": ARN}}")
    out: list[str] = []
    for kind, ids in value.items():
        if kind not in ("AWS", "Service", "Federated", "CanonicalUser"):
            raise PolicyError(f"{what} has an unknown principal type {kind!r}")
        # Only AWS principals can be callers here; others are kept tagged so they never match.
        out.extend(i if kind == "AWS" else f"{kind}:{i}" for i in _strings(ids, f"{what}.{kind}"))
    return tuple(out)


def _parse_conditions(block: Any, where: str) -> tuple[Condition, ...]:
    if not isinstance(block, dict):
        raise PolicyError(f"{where}.Condition must be an object")
    out = []
    for operator, keys in block.items():
        name = operator
        set_op = None
        if ":" in name:
            set_op, name = name.split(":", 1)
            if set_op not in ("ForAnyValue", "ForAllValues"):
                raise PolicyError(f"{where}: unknown condition set operator {set_op!r}")
        if_exists = name.endswith("IfExists") and name != "IfExists"
        base = name[: -len("IfExists")] if if_exists else name
        if base not in OPERATORS or (base == "Null" and (if_exists or set_op)):
            raise PolicyError(f"{where}: unknown condition operator {operator!r}")
        if not isinstance(keys, dict) or not keys:
            raise PolicyError(f"{where}: condition {operator!r} must map keys to values")
        for key, values in keys.items():
            vals = _condition_values(values, f"{where}: {operator} {key}")
            if base == "Null" and any(v.lower() not in ("true", "false") for v in vals):
                raise PolicyError(f"{where}: Null takes true or false")
            out.append(Condition(operator, base, if_exists, set_op, key, vals))
    return tuple(out)


def _pair(st: dict, name: str, where: str, parse: Callable[[Any, str], tuple[str, ...]], *, required: bool):
    has, has_not = name in st, f"Not{name}" in st
    if has and has_not:
        raise PolicyError(f"{where} has both {name} and Not{name}")
    if required and not (has or has_not):
        raise PolicyError(f"{where} needs {name} or Not{name}")
    return (parse(st[name], f"{where}.{name}") if has else None,
            parse(st[f"Not{name}"], f"{where}.Not{name}") if has_not else None)


_STATEMENT_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource",
                   "Condition"}


def parse_policy(text: str | bytes) -> Policy:
    """Parse a key policy document; raise :class:`PolicyError` naming the first problem."""
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PolicyError(f"policy is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PolicyError("policy must be a JSON object")
    unknown = set(doc) - {"Version", "Id", "Statement"}
    if unknown:
        raise PolicyError(f"policy has unknown fields: {sorted(unknown)}")
    version = doc.get("Version")
    if version is not None and version not in ("2012-10-17", "2008-10-17"):
        raise PolicyError(f"unknown policy Version {version!r}")
    raw = doc.get("Statement")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise PolicyError("policy needs a non-empty Statement")
    statements = []
    for i, st in enumerate(raw):
        where = f"Statement[{i}]"
        if not isinstance(st, dict):
            raise PolicyError(f"{where} must be an object")
        unknown = set(st) - _STATEMENT_KEYS
        if unknown:
            raise PolicyError(f"{where} has unknown fields: {sorted(unknown)}")
        sid = st.get("Sid")
        if sid is not None and not isinstance(sid, str):
            raise PolicyError(f"{where}.Sid must be a string")
        effect = st.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"{where}.Effect must be Allow or Deny")
        principal, not_principal = _pair(st, "Principal", where, _principals, required=True)
        action, not_action = _pair(st, "Action", where, _strings, required=True)
        resource, not_resource = _pair(st, "Resource", where, _strings, required=True)
        conditions = _parse_conditions(st["Condition"], where) if "Condition" in st else ()
        statements.append(Statement(i, sid, effect, principal, not_principal, action, not_action, resource,
                                    not_resource, conditions))
    text_str = text.decode() if isinstance(text, bytes) else text
    return Policy(version, tuple(statements), text_str)


# --- matching ------------------------------------------------------------------------------------

def _wild(pattern: str, value: str, *, case: bool) -> bool:
    """IAM wildcard match: ``*`` any run, ``?`` one character, nothing else special."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, 0 if case else re.IGNORECASE | re.DOTALL) is not None


def _account_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) >= 6 and parts[0] == "arn" else None


def _principal_matches(entry: str, principal: str) -> bool:
    if entry == "*":
        return True
    if _ACCOUNT.match(entry):
        entry = f"arn:aws:iam::{entry}:root"
    if entry == principal:
        return True
    parts = entry.split(":", 5)
    if len(parts) == 6 and parts[:3] == ["arn", "aws", "iam"] and parts[5] == "root":
        return _account_of(principal) == parts[4]
    if len(parts) == 6 and parts[:3] == ["arn", "aws", "iam"] and parts[5].startswith("role/"):
        # arn:aws:sts::ACCT:assumed-role/NAME/SESSION is a session of arn:aws:iam::ACCT:role/NAME
        # (role paths are not part of the session ARN, so compare the role's last name).
        role_name = parts[5].rsplit("/", 1)[-1]
        p = principal.split(":", 5)
        if len(p) == 6 and p[:3] == ["arn", "aws", "sts"] and p[4] == parts[4]:
            segs = p[5].split("/")
            return len(segs) == 3 and segs[0] == "assumed-role" and segs[1] == role_name
    return False


def _number(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


_NUM_CMP: dict[str, Callable[[float, float], bool]] = {
    "NumericEquals": lambda a, b: a == b,
    "NumericLessThan": lambda a, b: a < b,
    "NumericLessThanEquals": lambda a, b: a <= b,
    "NumericGreaterThan": lambda a, b: a > b,
    "NumericGreaterThanEquals": lambda a, b: a >= b,
}


def _positive_match(base: str, value: str, wanted: str) -> bool:
    """Whether one context value satisfies one policy value under the positive form of ``base``."""
    if base in ("StringEquals", "StringNotEquals"):
        return value == wanted
    if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return value.casefold() == wanted.casefold()
    if base in ("StringLike", "StringNotLike"):
        return _wild(wanted, value, case=True)
    if base in ("ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike"):
        # ARNs compare component-wise; wildcards may appear in any component.
        v, w = value.split(":", 5), wanted.split(":", 5)
        return len(v) == len(w) == 6 and all(_wild(pw, pv, case=True) for pw, pv in zip(w, v))
    if base == "Bool":
        return value.lower() == wanted.lower()
    if base == "BinaryEquals":
        return value == wanted
    a, b = _number(value), _number(wanted)
    if a is None or b is None:
        return False
    if base == "NumericNotEquals":
        return a == b
    return _NUM_CMP[base](a, b)


def _single(cond: Condition, value: str) -> bool:
    """One context value against the condition's value list (OR across the list)."""
    hit = any(_positive_match(cond.base, value, w) for w in cond.values)
    return not hit if cond.base in _NEGATED else hit


def _condition_holds(cond: Condition, context: Mapping[str, str | Sequence[str]]) -> bool:
    # Condition keys are case-insensitive in IAM.
    found = next((v for k, v in context.items() if k.lower() == cond.key.lower()), None)
    if cond.base == "Null":
        want_missing = cond.values[0].lower() == "true"
        missing = found is None or (not isinstance(found, str) and len(found) == 0)
        return missing == want_missing
    values = None if found is None else ([found] if isinstance(found, str) else list(found))
    if cond.set_op == "ForAllValues":
        return True if not values else all(_single(cond, v) for v in values)
    if cond.set_op == "ForAnyValue":
        return False if not values else any(_single(cond, v) for v in values)
    if not values:
        return cond.if_exists or cond.base in _NEGATED
    # A single-valued operator on a multi-valued key: true if any value satisfies it.
    return any(_single(cond, v) for v in values)


def _statement_applies(st: Statement, req: Request) -> tuple[bool, str]:
    if st.principal is not None:
        if not any(_principal_matches(p, req.principal) for p in st.principal):
            return False, "principal does not match"
    elif any(_principal_matches(p, req.principal) for p in st.not_principal or ()):
        return False, "principal is excluded by NotPrincipal"
    if st.action is not None:
        if not any(_wild(a, req.action, case=False) for a in st.action):
            return False, "action does not match"
    elif any(_wild(a, req.action, case=False) for a in st.not_action or ()):
        return False, "action is excluded by NotAction"
    if st.resource is not None:
        if not any(_wild(r, req.resource, case=True) for r in st.resource):
            return False, "resource does not match"
    elif any(_wild(r, req.resource, case=True) for r in st.not_resource or ()):
        return False, "resource is excluded by NotResource"
    for cond in st.conditions:
        if not _condition_holds(cond, req.context):
            return False, f"condition {cond.operator} {cond.key} is not met"
    return True, "matches"


def evaluate(policy: Policy | str | bytes, request: Request) -> Decision:
    """Evaluate one request against one key policy (explicit deny > allow > implicit deny)."""
    if not isinstance(policy, Policy):
        policy = parse_policy(policy)
    allow: Statement | None = None
    near: list[tuple[str | int, str]] = []
    for st in policy.statements:
        applies, why = _statement_applies(st, request)
        if not applies:
            if why.startswith(("condition", "resource")):
                near.append((st.label, why))
            continue
        if st.effect == "Deny":
            return Decision(False, st.label, f"explicit deny in statement {st.label!r}", explicit_deny=True)
        allow = allow or st
    if allow is not None:
        return Decision(True, allow.label, f"allowed by statement {allow.label!r}")
    detail = "".join(f"; statement {label!r} did not apply: {why}" for label, why in near)
    return Decision(False, None, f"no statement allows the request (implicit deny){detail}", near_misses=tuple(near))
