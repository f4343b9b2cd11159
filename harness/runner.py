"""Run checks against a target and judge them (Autobahn-style verdicts, h2spec-style ids)."""

from __future__ import annotations

import fnmatch
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterable

from .protocol.client import ProtocolViolation
from .suites.registry import (
    Check,
    CheckFailed,
    CheckUnimplemented,
    Context,
    Level,
    Observation,
    Verdict,
)


@dataclass
class Result:
    check: Check
    verdict: Verdict
    message: str = ""
    expected: Any = None
    actual: Any = None
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {
            "id": self.check.id,
            "section": self.check.section,
            "profile": self.check.profile,
            "level": self.check.level.value,
            "requirement": self.check.requirement,
            "verdict": self.verdict.value,
            "message": self.message,
            "expected": _jsonable(self.expected),
            "actual": _jsonable(self.actual),
            "seconds": round(self.seconds, 4),
        }


def _jsonable(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return repr(value)


def is_failing(result: Result, *, strict: bool = False) -> bool:
    """Whether this result fails the run (spec README, "Conformance levels and verdicts").

    Within the selected profiles every MUST is required, so an UNIMPLEMENTED MUST fails; a SHOULD
    (NON-STRICT, or UNIMPLEMENTED) fails only under ``--strict``; INFO never does.
    """
    verdict, level = result.verdict, result.check.level
    if verdict in (Verdict.FAILED, Verdict.ERROR, Verdict.UNEXPECTED_PASS):
        return True
    if verdict is Verdict.UNIMPLEMENTED:
        return level is Level.MUST or (strict and level is Level.SHOULD)
    return strict and verdict is Verdict.NON_STRICT


@dataclass
class Run:
    target: str
    results: list[Result] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    strict: bool = False
    profiles: tuple[str, ...] = ()

    def failing(self) -> list[Result]:
        return [r for r in self.results if is_failing(r, strict=self.strict)]

    def passed(self) -> bool:
        return not self.failing()

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for result in self.results:
            counts[result.verdict.value] = counts.get(result.verdict.value, 0) + 1
        return counts


def select(checks: Iterable[Check], patterns: list[str] | None) -> list[Check]:
    if not patterns:
        return list(checks)
    return [c for c in checks if any(fnmatch.fnmatch(c.id, p) for p in patterns)]


def plan(checks: Iterable[Check], profiles: Iterable[str], patterns: list[str] | None = None
         ) -> tuple[list[Check], list[Check]]:
    """Split checks into (to run, not selected): in one of ``profiles`` and matching ``patterns``.

    Checks tagged ``final`` run after all others, since they judge what the whole run saw.
    """
    wanted = set(profiles)
    chosen = {c.id for c in select([c for c in checks if c.profile in wanted], patterns)}
    checks = list(checks)
    to_run = [c for c in checks if c.id in chosen]
    to_run.sort(key=lambda c: c.final)  # stable: registration order otherwise
    return to_run, [c for c in checks if c.id not in chosen]


# What each kind of outcome becomes at each level. INFO can only ever be INFORMATIONAL, whatever
# the target does; SHOULD can never be FAILED.
_VERDICTS = {
    Level.MUST: {"held": Verdict.OK, "violated": Verdict.FAILED, "observed": Verdict.INFORMATIONAL,
                 "unimplemented": Verdict.UNIMPLEMENTED, "crashed": Verdict.ERROR},
    Level.SHOULD: {"held": Verdict.OK, "violated": Verdict.NON_STRICT, "observed": Verdict.INFORMATIONAL,
                   "unimplemented": Verdict.UNIMPLEMENTED, "crashed": Verdict.ERROR},
    Level.INFO: dict.fromkeys(("held", "violated", "observed", "unimplemented", "crashed"), Verdict.INFORMATIONAL),
}


def run_check(check: Check, ctx: Context) -> Result:
    started = time.perf_counter()
    expected = actual = None
    try:
        check.func(ctx)
        outcome, message = "held", ""
    except CheckFailed as failure:
        outcome, message, expected, actual = "violated", failure.message, failure.expected, failure.actual
    except ProtocolViolation as violation:
        outcome, message = "violated", f"protocol violation: {violation}"
    except Observation as seen:
        outcome, message = "observed", str(seen)
    except CheckUnimplemented as missing:
        outcome, message = "unimplemented", str(missing)
    except Exception as error:  # the target was unreachable, or the harness has a bug: say which
        outcome, message = "crashed", f"{type(error).__name__}: {error}"
        if check.level is Level.INFO:
            message = f"could not observe: {message}"
        else:
            actual = traceback.format_exc(limit=3)
    verdict = _VERDICTS[check.level][outcome]
    return Result(check, verdict, message, expected, actual, time.perf_counter() - started)


def apply_waivers(results: list[Result], expected_failures: set[str]) -> None:
    """Listed checks that fail become WAIVED; listed checks that pass become UNEXPECTED-PASS."""
    for result in results:
        if result.check.id not in expected_failures:
            continue
        if result.verdict in (Verdict.FAILED, Verdict.NON_STRICT, Verdict.UNIMPLEMENTED):
            result.verdict = Verdict.WAIVED
        elif result.verdict is Verdict.OK:
            result.verdict = Verdict.UNEXPECTED_PASS
            result.message = "listed as an expected failure, but passed: remove it from the list"


def run(checks: list[Check], ctx: Context, *, expected_failures: set[str] = frozenset(), strict: bool = False,
        on_result=None, not_selected: Iterable[Check] = (), profiles: Iterable[str] = ()) -> Run:
    outcome = Run(ctx.target, strict=strict, profiles=tuple(profiles))
    for check in sorted(checks, key=lambda c: c.final):
        result = run_check(check, ctx)
        apply_waivers([result], set(expected_failures))
        outcome.results.append(result)
        if on_result:
            on_result(result)
    outcome.results += [Result(check, Verdict.NOT_SELECTED, "outside the selected profiles or --select")
                        for check in not_selected]
    outcome.facts = {k: v for k, v in ctx.facts.items() if not k.startswith("_")}
    return outcome
