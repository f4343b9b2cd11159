"""Audit of a KMS key policy: is key release really locked to the attested enclave? (spec §11.5).

``audit_policy(text, attested_pcrs=...)`` answers one question: can ``kms:Decrypt``,
``kms:GenerateDataKey`` or ``kms:GenerateDataKeyPair`` (the calls that hand out key material, the
"release" actions) succeed for anyone other than an enclave whose attested PCRs equal the given
ones? Every way the answer can be "yes" is a :class:`Finding` with its own code; the empty list
means the policy is enclave-locked. Pure: no IO, no clock.

How it decides. Each ``Allow`` statement that covers a release action is probed with the
mock KMS's own IAM evaluation (:func:`harness.kms.policy.evaluate`), alone and inside the whole
policy (so a guarding ``Deny`` is honoured): once with no attestation at all (a call from the
parent instance, any laptop with the role's credentials) and once with the attested PCRs except
an altered PCR0 (another enclave image). A probe that gets through is a hole, named by the
construct that let it through (``...IfExists``, a negated operator, ``ForAllValues``, no
attestation condition, an action wildcard). Value-level checks are structural: every attestation
condition must name attested PCRs, with exactly the attested value, without wildcards. Actions
that sidestep the policy (``CreateGrant``, ``PutKeyPolicy``, ``ReEncrypt*``, ``ReplicateKey``) must
not be open to the enclave's principal or to everyone.

What it deliberately does not judge: key administrators. A principal allowed ``kms:Put*`` can
rewrite the policy (AWS's own model; the next audit sees the new policy). ``GenerateRandom`` is
not a key-resource action, so no key policy governs it; the ``...WithoutPlaintext`` variants
release nothing.

CLI (``vault-harness audit-policy``; also ``python -m harness.kms.audit``)::

    audit-policy POLICY.json (--pcrs describe.json | --pcr 0=HEX ...) [--json]

Exit 0: no findings; 1: findings; 2: bad usage (unreadable file, bad JSON, malformed policy).
"""

from __future__ import annotations

import argparse
import enum
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from .policy import Policy, PolicyError, Request, Statement, evaluate, parse_policy

__all__ = ["AuditError", "Finding", "FindingCode", "RELEASE_ACTIONS", "BYPASS_ACTIONS", "audit_policy",
           "attestation_context", "main", "normalise_pcrs", "read_pcrs_file"]

#: Actions whose success hands key material to the caller: the ones that must be enclave-locked.
RELEASE_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyPair")
#: Actions that let a principal get around the key policy: a grant (its own access rules), a new
#: policy, re-encryption under a key the caller controls, a replica key with a policy of its own.
BYPASS_ACTIONS = ("kms:CreateGrant", "kms:PutKeyPolicy", "kms:ReEncryptFrom", "kms:ReEncryptTo",
                  "kms:ReplicateKey")

_ATTESTATION_PREFIX = "kms:recipientattestation:"
_IMAGE_KEY = "kms:RecipientAttestation:ImageSha384"
_PCR_KEY = re.compile(r"^pcr(\d{1,2})$")
_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike",
            "NumericNotEquals"}
_POSITIVE_STRING = {"StringEquals", "StringEqualsIgnoreCase", "StringLike"}
# Probe identities (never real): a principal of a named account, and a stranger from elsewhere.
_PROBE_ROLE = "arn:aws:iam::{account}:role/policy-audit-probe"
_STRANGER = "arn:aws:iam::000000000000:role/policy-audit-stranger"
_KEY_ARN = "arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000"


class FindingCode(str, enum.Enum):
    """One code per kind of hole (spec §11.5.2 lists them with an example each)."""

    UNATTESTED_ALLOW = "unattested-allow"  # a release action allowed with no attestation condition
    UNATTESTED_WILDCARD_ALLOW = "unattested-wildcard-allow"  # ... through kms:* / kms:Generate* / *
    IF_EXISTS_ATTESTATION = "if-exists-attestation"  # ...IfExists on an attestation key lets unattested calls in
    NEGATED_ATTESTATION_OPERATOR = "negated-attestation-operator"  # StringNotEquals & co. on an attestation key
    FOR_ALL_VALUES_ATTESTATION = "for-all-values-attestation"  # ForAllValues: true when the key is missing
    IMAGE_NOT_PINNED = "image-not-pinned"  # attested calls of any image pass (no PCR0/ImageSha384 pin)
    PCR_NOT_ATTESTED = "pcr-not-attested"  # a condition on a PCR the attestation did not give
    PCR_VALUE_MISMATCH = "pcr-value-mismatch"  # a condition's value(s) are not the attested one
    EXTRA_PCR_VALUE = "extra-pcr-value"  # any-of list: the attested value plus others (other images)
    STRING_LIKE_WILDCARD = "string-like-wildcard"  # StringLike with * or ? on an attestation key
    UNKNOWN_ATTESTATION_KEY = "unknown-attestation-key"  # kms:RecipientAttestation:<not a known key>
    GRANT_BYPASS = "grant-bypass"  # CreateGrant/PutKeyPolicy/ReEncrypt*/ReplicateKey open to the enclave or anyone
    NOT_PRINCIPAL_ALLOW = "not-principal-allow"  # Allow with NotPrincipal
    NOT_ACTION_ALLOW = "not-action-allow"  # Allow with NotAction
    PRINCIPAL_WILDCARD = "principal-wildcard"  # Allow to Principal "*": any account running the image
    INEFFECTIVE_DENY = "ineffective-deny"  # a Deny on attestation keys that stops neither probe
    NO_ATTESTED_ACCESS = "no-attested-access"  # the attested enclave itself cannot Decrypt
    DEBUG_MEASUREMENT = "debug-measurement"  # pinned to all-zero PCRs: every debug-mode enclave matches


@dataclass(frozen=True)
class Finding:
    code: FindingCode
    index: int | None  # 0-based statement index; None for the policy as a whole
    sid: str | None
    message: str

    def to_json(self) -> dict:
        return {"code": self.code.value, "statementIndex": self.index, "sid": self.sid, "message": self.message}

    def __str__(self) -> str:
        where = "policy" if self.index is None else f"statement {self.index}" + (f" ({self.sid})" if self.sid else "")
        return f"{self.code.value}: {where}: {self.message}"


class AuditError(ValueError):
    """Bad input to the audit: malformed policy or PCR values (the CLI's exit 2)."""


# --- PCR input ---------------------------------------------------------------------------------

def normalise_pcrs(pcrs: Mapping) -> dict[int, str]:
    """``{0: bytes}``, ``{"0": "hex"}`` or ``{"PCR0": "hex"}`` -> ``{0: "lowercase hex"}``."""
    if not isinstance(pcrs, Mapping) or not pcrs:
        raise AuditError("attested PCRs must be a non-empty mapping of index to value")
    out: dict[int, str] = {}
    for key, value in pcrs.items():
        name = str(key)
        digits = name[3:] if name.upper().startswith("PCR") else name
        if not digits.isdigit() or not 0 <= int(digits) <= 31:
            raise AuditError(f"PCR index {key!r} is not 0..31")
        if isinstance(value, (bytes, bytearray)):
            raw = bytes(value)
        elif isinstance(value, str) and re.fullmatch(r"(?:[0-9a-fA-F]{2})+", value):
            raw = bytes.fromhex(value)
        else:
            raise AuditError(f"PCR{digits} must be bytes or hex, got {str(value)[:40]!r}")
        if len(raw) not in (32, 48, 64):
            raise AuditError(f"PCR{digits} is {len(raw)} bytes, not 32, 48 or 64")
        out[int(digits)] = raw.hex()
    return out


def read_pcrs_file(text: str) -> dict[int, str]:
    """PCRs from ``nitro-cli describe-eif``/``build-enclave`` (``{"Measurements": {...}}``),
    ``describe-enclaves`` (a list holding one enclave), or a plain ``{"PCR0": hex}`` map."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise AuditError(f"PCR file is not JSON: {exc}") from None
    if isinstance(doc, list):
        if len(doc) != 1:
            raise AuditError(f"PCR file lists {len(doc)} enclaves; give exactly one")
        doc = doc[0]
    table = doc.get("Measurements", doc) if isinstance(doc, dict) else None
    if not isinstance(table, dict):
        raise AuditError("PCR file must be a JSON object with Measurements or PCRn fields")
    pcrs = {k: v for k, v in table.items() if re.fullmatch(r"PCR\d{1,2}", k)}
    if not pcrs:
        raise AuditError("PCR file has no PCRn values")
    return normalise_pcrs(pcrs)


def attestation_context(pcrs: Mapping[int, str]) -> dict[str, str]:
    """The request context KMS builds from a verified Recipient (KMS.md §2)."""
    context = {f"kms:RecipientAttestation:PCR{i}": v for i, v in pcrs.items()}
    if 0 in pcrs:
        context[_IMAGE_KEY] = pcrs[0]
    return context


# --- helpers -----------------------------------------------------------------------------------

def _wild(pattern: str, value: str) -> bool:
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.IGNORECASE | re.DOTALL) is not None


def _covers(st: Statement, action: str) -> bool:
    if st.action is not None:
        return any(_wild(a, action) for a in st.action)
    return not any(_wild(a, action) for a in st.not_action or ())


def _by_wildcard(st: Statement, action: str) -> bool:
    """Whether the statement grants ``action`` only through a pattern (or NotAction)."""
    if st.action is None:
        return True
    return not any(a.lower() == action.lower() for a in st.action)


def _attestation_index(key: str) -> int | None | str:
    """PCR index of an attestation condition key; 0 for ImageSha384; "unknown" for others; None if
    the key is not an attestation key at all."""
    lowered = key.lower()
    if not lowered.startswith(_ATTESTATION_PREFIX):
        return None
    rest = lowered[len(_ATTESTATION_PREFIX):]
    if rest == "imagesha384":
        return 0
    match = _PCR_KEY.match(rest)
    if match and int(match.group(1)) <= 31:
        return int(match.group(1))
    return "unknown"


def _probe_principals(st: Statement) -> list[str]:
    """Concrete caller ARNs this statement's principal element admits."""
    if st.principal is None:  # NotPrincipal: someone not excluded
        return [_STRANGER]
    out = []
    for p in st.principal:
        if p == "*":
            out.append(_STRANGER)
        elif re.fullmatch(r"\d{12}", p):
            out.append(_PROBE_ROLE.format(account=p))
        elif re.fullmatch(r"arn:aws:iam::\d{12}:root", p):
            out.append(_PROBE_ROLE.format(account=p.split(":")[4]))
        elif p.startswith("arn:"):
            out.append(p)
    return out  # Service/Federated principals are not callers of these actions here


def _altered(value: str) -> str:
    first = int(value[:2], 16) ^ 0xFF
    return f"{first:02x}{value[2:]}"


def _who(principal: str) -> str:
    """A probe identity as the reader should see it."""
    if principal == _STRANGER:
        return "anyone"
    if principal.endswith(":role/policy-audit-probe"):
        return f"any principal of account {principal.split(':')[4]}"
    return principal


# --- the audit ---------------------------------------------------------------------------------

def audit_policy(policy_text: str | bytes, *, attested_pcrs: Mapping, enclave_principals: Iterable[str] | None = None
                 ) -> list[Finding]:
    """Every hole in ``policy_text`` that lets key material out to anyone but an enclave with
    ``attested_pcrs``. Raises :class:`AuditError` for a malformed policy or PCR map.

    ``enclave_principals``: the enclave's parent-instance role ARNs. Without it, the principals of
    the statements that condition a release action on attestation are taken to be the enclave's.
    """
    pcrs = normalise_pcrs(attested_pcrs)
    try:
        policy = parse_policy(policy_text)
    except PolicyError as exc:
        raise AuditError(f"malformed policy: {exc}") from None
    findings: list[Finding] = []
    seen: set[tuple] = set()

    def add(code: FindingCode, st: Statement | None, message: str) -> None:
        key = (code, None if st is None else st.index, message)
        if key not in seen:
            seen.add(key)
            findings.append(Finding(code, None if st is None else st.index, None if st is None else st.sid, message))

    attested = attestation_context(pcrs)
    # Another image: the attested PCRs with PCR0 (and ImageSha384, its alias) changed; without an
    # attested PCR0, any PCR0 at all is "another image".
    other_pcr0 = _altered(pcrs[0]) if 0 in pcrs else "5a" * 48
    wrong_image = {**attested, "kms:RecipientAttestation:PCR0": other_pcr0, _IMAGE_KEY: other_pcr0}

    def single(st: Statement) -> Policy:
        return replace(policy, statements=(st,))

    inferred: list[str] = []
    fallback: list[str] = []
    for st in policy.statements:
        if st.effect != "Allow":
            continue
        released = [a for a in RELEASE_ACTIONS if _covers(st, a)]
        bypass = [a for a in BYPASS_ACTIONS if _covers(st, a)]
        if not released and not bypass:
            continue
        if st.not_principal is not None:
            add(FindingCode.NOT_PRINCIPAL_ALLOW, st, "Allow with NotPrincipal admits every principal it does not name")
        if st.not_action is not None:
            add(FindingCode.NOT_ACTION_ALLOW, st,
                f"Allow with NotAction grants {', '.join(released + bypass)} and every action added to KMS later")
        if st.principal is not None and "*" in st.principal:
            add(FindingCode.PRINCIPAL_WILDCARD, st,
                "Principal \"*\": a principal of any AWS account running the same image passes")
        att_conditions = [c for c in st.conditions if _attestation_index(c.key) is not None]
        if released and att_conditions and st.principal is not None:
            inferred.extend(p for p in _probe_principals(st) if p != _STRANGER)
        if released:
            _audit_values(st, att_conditions, pcrs, add)
        for principal in _probe_principals(st):
            if released:
                fallback.append(principal)
            for action in released:
                _probe_release(policy, st, single(st), action, released, principal, att_conditions, wrong_image, add)

    # The enclave's principal: given, else the ones with attestation-conditioned release, else
    # every principal a release Allow names (a policy with no attested Allow at all).
    if enclave_principals is not None:
        enclave = list(enclave_principals)
    else:
        enclave = list(dict.fromkeys(inferred or fallback))
    _audit_bypass(policy, single, enclave, add)
    _audit_denies(policy, single, enclave, wrong_image, add)
    _audit_attested_access(policy, enclave, attested, add)
    return findings


def _audit_values(st: Statement, conditions, pcrs: Mapping[int, str], add) -> None:
    """Each attestation condition of an Allow must name an attested PCR with exactly its value."""
    for cond in conditions:
        index = _attestation_index(cond.key)
        if index == "unknown":
            add(FindingCode.UNKNOWN_ATTESTATION_KEY, st, f"{cond.key} is not a KMS attestation condition key "
                "(ImageSha384 or PCR0..PCR31); KMS never sets it")
            continue
        if cond.base not in _POSITIVE_STRING:
            continue  # negated, Null and other operators are judged by the probes
        if index not in pcrs:
            add(FindingCode.PCR_NOT_ATTESTED, st, f"{cond.operator} on {cond.key}: PCR{index} is not among the "
                f"attested PCRs ({', '.join(f'PCR{i}' for i in sorted(pcrs))})")
            continue
        if cond.base == "StringLike" and any(ch in v for v in cond.values for ch in "*?"):
            add(FindingCode.STRING_LIKE_WILDCARD, st, f"StringLike on {cond.key} with a wildcard "
                f"({', '.join(cond.values)}) matches measurements other than the attested one")
            continue
        want = pcrs[index]
        if cond.base == "StringEqualsIgnoreCase":
            matching = [v for v in cond.values if v.casefold() == want]
        else:  # KMS gives lowercase hex; case-sensitive operators must match it exactly
            matching = [v for v in cond.values if v == want]
        others = [v for v in cond.values if v not in matching]
        if matching and set(want) == {"0"}:
            add(FindingCode.DEBUG_MEASUREMENT, st, f"{cond.operator} on {cond.key} pins an all-zero value: a debug-mode "
                "enclave reports zero PCRs whatever its image, so every debug enclave passes")
        if not matching:
            add(FindingCode.PCR_VALUE_MISMATCH, st, f"{cond.operator} on {cond.key} wants "
                f"{', '.join(cond.values)}; the attested PCR{index} is {want}")
        elif others:
            add(FindingCode.EXTRA_PCR_VALUE, st, f"{cond.operator} on {cond.key} also admits "
                f"{', '.join(others)} (any-of): enclaves with another measurement pass")


def _probe_release(policy, st, alone, action, released, principal, att_conditions, wrong_image, add) -> None:
    """Probe one Allow statement: an unattested call, and an attested call of another image."""
    actions, who = ", ".join(released), _who(principal)
    unattested = Request(principal, action, _KEY_ARN, {})
    if evaluate(alone, unattested).allowed and evaluate(policy, unattested).allowed:
        causes = _causes(att_conditions, missing=True)
        if causes:
            for code, cond in causes:
                add(code, st, f"{cond.operator} on {cond.key} holds without attestation: {who} can call {actions}")
        elif att_conditions:
            add(FindingCode.UNATTESTED_ALLOW, st, f"{actions} allowed to {who} without attestation despite the "
                "attestation conditions")
        elif _by_wildcard(st, action):
            patterns = ", ".join(st.action or ()) or f"NotAction {', '.join(st.not_action or ())}"
            add(FindingCode.UNATTESTED_WILDCARD_ALLOW, st, f"{patterns} grants {actions} to {who} with no "
                "attestation condition")
        else:
            add(FindingCode.UNATTESTED_ALLOW, st, f"{actions} allowed to {who} with no attestation condition")
        return
    other = Request(principal, action, _KEY_ARN, wrong_image)
    if evaluate(alone, other).allowed and evaluate(policy, other).allowed:
        causes = _causes(att_conditions, missing=False)
        # A StringLike pin of the image itself is judged by _audit_values (its wildcards); one on
        # another PCR (PCR8: the signer) still lets another image through, so it does not excuse.
        structural = any(_attestation_index(c.key) == 0 and c.base == "StringLike" for c in att_conditions)
        if causes:
            for code, cond in causes:
                add(code, st, f"{cond.operator} on {cond.key} holds for another enclave image: its {actions} pass")
        elif not structural:
            add(FindingCode.IMAGE_NOT_PINNED, st, f"{actions} allowed to an attested enclave with another PCR0: "
                "no condition pins PCR0 (or ImageSha384) to the attested value")


def _causes(conditions, *, missing: bool) -> list:
    """The attestation conditions whose operator explains a probe getting through."""
    out = []
    for cond in conditions:
        if cond.set_op == "ForAllValues" and missing:
            out.append((FindingCode.FOR_ALL_VALUES_ATTESTATION, cond))
        elif cond.base in _NEGATED:
            out.append((FindingCode.NEGATED_ATTESTATION_OPERATOR, cond))
        elif cond.if_exists and missing:
            out.append((FindingCode.IF_EXISTS_ATTESTATION, cond))
    return out


def _audit_bypass(policy: Policy, single, enclave: list[str], add) -> None:
    """CreateGrant/PutKeyPolicy/ReEncrypt*/ReplicateKey must not reach the enclave role or everyone."""
    callers = [*enclave, _STRANGER]
    for st in policy.statements:
        if st.effect != "Allow":
            continue
        for caller in callers:
            opened = [a for a in BYPASS_ACTIONS if _covers(st, a)
                      and evaluate(single(st), Request(caller, a, _KEY_ARN, {})).allowed
                      and evaluate(policy, Request(caller, a, _KEY_ARN, {})).allowed]
            if opened:
                add(FindingCode.GRANT_BYPASS, st, f"{', '.join(opened)} allowed to {_who(caller)}: key access "
                    "around the attestation conditions")
                break


def _audit_denies(policy: Policy, single, enclave: list[str], wrong_image, add) -> None:
    """A Deny on attestation keys must stop an unattested call or another image's call."""
    callers = [*enclave, _STRANGER]
    for st in policy.statements:
        if st.effect != "Deny" or not any(_attestation_index(c.key) is not None for c in st.conditions):
            continue
        actions = [a for a in RELEASE_ACTIONS if _covers(st, a)]
        if not actions:
            continue
        contexts = [{}, wrong_image]
        stops = any(evaluate(single(st), Request(c, a, _KEY_ARN, ctx)).explicit_deny
                    for c in callers for a in actions for ctx in contexts)
        if not stops:
            add(FindingCode.INEFFECTIVE_DENY, st, "this Deny applies neither to calls without attestation nor to "
                "another enclave image, so it guards nothing")


def _audit_attested_access(policy: Policy, enclave: list[str], attested, add) -> None:
    """The policy under audit should be the one that released the key to the attested enclave."""
    if not attested:
        return
    if any(evaluate(policy, Request(p, "kms:Decrypt", _KEY_ARN, attested)).allowed for p in enclave):
        return
    who = ", ".join(map(_who, enclave)) if enclave else "no principal has an attestation-conditioned Allow"
    add(FindingCode.NO_ATTESTED_ACCESS, None, f"kms:Decrypt with the attested PCRs is denied ({who}): this policy "
        "cannot be the one that released the key to this enclave")


# --- CLI ---------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):  # exit 2 with one line, as argparse does, but without the usage block
        self.exit(2, f"{self.prog}: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="vault-harness audit-policy",
                     description="Audit a KMS key policy: is key release locked to the attested enclave?")
    parser.add_argument("policy", help="the key policy (JSON; GetKeyPolicy's Policy string)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pcrs", help="PCRs from nitro-cli describe-eif / describe-enclaves JSON")
    source.add_argument("--pcr", action="append", metavar="N=HEX", help="one attested PCR (repeatable)")
    parser.add_argument("--principal", action="append", help="the enclave's parent role ARN (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    args = parser.parse_args(argv)
    try:
        text = _read(args.policy, "policy")
        if args.pcrs:
            pcrs = read_pcrs_file(_read(args.pcrs, "PCR file"))
        else:
            pairs = {}
            for item in args.pcr:
                index, sep, value = item.partition("=")
                if not sep:
                    raise AuditError(f"--pcr {item!r}: expected N=HEX")
                pairs[index.strip()] = value.strip().lower()
            pcrs = normalise_pcrs(pairs)
        findings = audit_policy(text, attested_pcrs=pcrs, enclave_principals=args.principal)
    except AuditError as exc:
        print(f"audit-policy: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"findings": [f.to_json() for f in findings], "pcrs": {f"PCR{i}": v for i, v in sorted(pcrs.items())}},
                         indent=2))
    else:
        for finding in findings:
            print(finding)
        print(f"{len(findings)} finding(s): " + ("the policy is NOT enclave-locked" if findings
                                                 else "release is locked to the attested PCRs"))
    return 1 if findings else 0


def _read(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None


if __name__ == "__main__":
    sys.exit(main())
