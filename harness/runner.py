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


FAILING = {Verdict.FAILED, Verdict.ERROR, Verdict.UNEXPECTED_PASS}


@dataclass
class Run:
    target: str
    results: list[Result] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    strict: bool = False

    def passed(self) -> bool:
        bad = FAILING | ({Verdict.NON_STRICT} if self.strict else set())
        return not any(r.verdict in bad for r in self.results)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for result in self.results:
            counts[result.verdict.value] = counts.get(result.verdict.value, 0) + 1
        return counts


def select(checks: Iterable[Check], patterns: list[str] | None) -> list[Check]:
    if not patterns:
        return list(checks)
    return [c for c in checks if any(fnmatch.fnmatch(c.id, p) for p in patterns)]


def run_check(check: Check, ctx: Context) -> Result:
    started = time.perf_counter()
    try:
        check.func(ctx)
        verdict, message, expected, actual = Verdict.OK, "", None, None
    except CheckFailed as failure:
        verdict = Verdict.NON_STRICT if check.level is Level.SHOULD else Verdict.FAILED
        if check.level is Level.INFO:
            verdict = Verdict.INFORMATIONAL
        message, expected, actual = failure.message, failure.expected, failure.actual
    except Observation as seen:
        verdict, message, expected, actual = Verdict.INFORMATIONAL, str(seen), None, None
    except CheckUnimplemented as missing:
        verdict, message, expected, actual = Verdict.UNIMPLEMENTED, str(missing), None, None
    except ProtocolViolation as violation:
        verdict, message, expected, actual = Verdict.FAILED, f"protocol violation: {violation}", None, None
    except Exception as error:  # the target was unreachable, or the harness has a bug: say which
        verdict = Verdict.ERROR
        message = f"{type(error).__name__}: {error}"
        expected, actual = None, traceback.format_exc(limit=3)
    if check.level is Level.INFO and verdict is Verdict.OK:
        verdict = Verdict.INFORMATIONAL
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
        on_result=None) -> Run:
    outcome = Run(ctx.target, strict=strict)
    for check in checks:
        result = run_check(check, ctx)
        apply_waivers([result], set(expected_failures))
        outcome.results.append(result)
        if on_result:
            on_result(result)
    outcome.facts = {k: v for k, v in ctx.facts.items() if not k.startswith("_")}
    return outcome
