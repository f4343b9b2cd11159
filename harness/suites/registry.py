"""Registry of conformance checks.

Every check has a stable id (``area/short-name``, never a positional number), the section of the
project's spec (``docs/spec/``) that it enforces, a level and the quoted requirement. A check is a
plain function taking a :class:`Context`; it returns normally when the requirement holds and
raises :class:`CheckFailed` (with expected and actual values) when it does not.

Verdicts follow Autobahn's vocabulary: a failed MUST is ``FAILED``, a failed SHOULD is
``NON-STRICT``, an ``INFO`` check reports an observation (``INFORMATIONAL``) and never fails a run.

Every check also belongs to one conformance **profile** (spec §1.4), derived from its area: a run
selects profiles, and within them every MUST is required.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any, Callable


# The version of docs/spec/ that these checks enforce (its README states it; a test keeps them equal).
SPEC_VERSION = "0.14"


class Level(str, enum.Enum):
    MUST = "MUST"
    SHOULD = "SHOULD"
    INFO = "INFO"


class Verdict(str, enum.Enum):
    OK = "OK"
    FAILED = "FAILED"
    NON_STRICT = "NON-STRICT"
    INFORMATIONAL = "INFORMATIONAL"
    UNIMPLEMENTED = "UNIMPLEMENTED"  # the target answered "unsupported operation"
    ERROR = "ERROR"  # the check itself could not run (target unreachable, harness bug)
    WAIVED = "WAIVED"  # failed, and listed as an expected failure
    UNEXPECTED_PASS = "UNEXPECTED-PASS"  # listed as expected failure, yet passed: fails the run
    NOT_SELECTED = "NOT-SELECTED"  # outside the run's profiles or --select: not run, never OK
    NOT_RUN = "NOT-RUN"  # selected, but the run stopped first (--deadline, --fail-fast, Ctrl-C): never OK


# Conformance profiles (spec §1.4): the ones the spec defines today, in the order reports list them.
PROFILES: dict[str, str] = {
    "core": "endpoints, the envelope, errors, ping, per-request forward secrecy",
    "accounts": "service accounts: create, authenticate, get, rotate",
    "attestation": "attestation documents on request, plain and through the envelope",
    "kms": "the master key's KMS policy, provable through the envelope",
    "eoa": "EOAs and EVM signing: create, list, messages, typed data, transactions, authorizations, user operations",
    "tokens": "access tokens, their policies and signed access tokens",
    "solana": "Solana accounts, ed25519 signing of messages and transactions, transaction policies",
}
# Profiles reserved for operations the spec does not define yet: selecting one is bad usage.
RESERVED_PROFILES: tuple[str, ...] = ()

AREA_PROFILES: dict[str, str] = {
    "e2e": "core",
    "errors": "core",
    "envelope": "core",
    "security": "core",
    "service-account": "accounts",
    "eoa": "eoa",
    "tokens": "tokens",
    "attestation": "attestation",
    "kms": "kms",
    "solana": "solana",
}


class CheckFailed(Exception):
    """The target does not meet the requirement; ``expected``/``actual`` say how."""

    def __init__(self, message: str, *, expected: Any = None, actual: Any = None):
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.actual = actual


class CheckUnimplemented(Exception):
    """The target reports the feature under test as unsupported."""


class Observation(Exception):
    """Raised by INFO checks to report what they saw (never a failure)."""


@dataclass(frozen=True)
class Check:
    id: str
    section: str  # e.g. "3.4": a numbered heading in docs/spec/
    level: Level
    requirement: str
    func: Callable[["Context"], Any] = field(compare=False, repr=False)
    tags: frozenset[str] = frozenset()
    profile: str = ""  # filled from the area when empty

    def __post_init__(self):
        if not self.profile:
            object.__setattr__(self, "profile", AREA_PROFILES.get(self.area, ""))

    @property
    def area(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def final(self) -> bool:
        """Checks tagged ``final`` run after all others (they judge what the whole run saw)."""
        return "final" in self.tags


_ID = re.compile(r"^[a-z0-9-]+/[a-z0-9-]+$")
_SECTION = re.compile(r"^\d+(\.\d+)*$")
_REGISTRY: dict[str, Check] = {}


def check(id: str, *, section: str, level: Level, requirement: str, tags: tuple[str, ...] = (),
          profile: str | None = None):
    """Register the decorated function as a conformance check."""
    if not _ID.match(id):
        raise ValueError(f"check id {id!r} must look like 'area/short-name'")
    if not _SECTION.match(section):
        raise ValueError(f"check {id}: section {section!r} must be a number like '3.4'")
    profile = profile or AREA_PROFILES.get(id.split("/", 1)[0])
    if profile not in PROFILES:
        raise ValueError(f"check {id}: no conformance profile for it (area not in AREA_PROFILES, or {profile!r} unknown)")

    def register(func: Callable[["Context"], Any]) -> Callable[["Context"], Any]:
        if id in _REGISTRY:
            raise ValueError(f"duplicate check id {id}")
        _REGISTRY[id] = Check(id, section, level, requirement, func, frozenset(tags), profile)
        return func

    return register


def all_checks() -> list[Check]:
    """Every registered check, in registration order (suites are imported for their side effect)."""
    from .. import suites  # noqa: F401  (imports every suite module)

    suites.load_all()
    return list(_REGISTRY.values())


@dataclass
class Context:
    """What a check gets: the target and the harness's client for it, plus run options."""

    target: str
    client: Any  # harness.protocol.client.VaultClient
    options: dict[str, Any] = field(default_factory=dict)
    # Facts a check learned that the report should carry (versions, measurements).
    facts: dict[str, Any] = field(default_factory=dict)
