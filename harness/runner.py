"""Run checks against a target and judge them (Autobahn-style verdicts, h2spec-style ids)."""

from __future__ import annotations

import fnmatch
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterable

from . import waivers as waiver_list
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
    # Why the run stopped before every selected check ran (deadline, fail-fast, Ctrl-C), else None.
    # An incomplete run never passes: what did not run was not shown to conform.
    incomplete: str | None = None
    seconds: float = 0.0
    unused_waivers: list[str] = field(default_factory=list)  # entries that matched no selected check

    def failing(self) -> list[Result]:
        return [r for r in self.results if is_failing(r, strict=self.strict)]

    def passed(self) -> bool:
        return not self.failing() and self.incomplete is None

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for result in self.results:
            counts[result.verdict.value] = counts.get(result.verdict.value, 0) + 1
        return counts


@dataclass(frozen=True)
class Selection:
    """Which checks of the selected profiles run: every given criterion must hold (``select``:
    one of the id globs; ``sections``: the check's section is one of these or below it, "3"
    covering 3.5 and 3.5.1; ``levels``; ``tags``: one of them), and no ``exclude`` glob may match."""

    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def holds(self, check: Check) -> bool:
        if self.select and not any(fnmatch.fnmatchcase(check.id, p) for p in self.select):
            return False
        if any(fnmatch.fnmatchcase(check.id, p) for p in self.exclude):
            return False
        if self.sections and not any(check.section == s or check.section.startswith(s + ".") for s in self.sections):
            return False
        if self.levels and check.level.value not in self.levels:
            return False
        return not self.tags or bool(set(self.tags) & set(check.tags))


def select(checks: Iterable[Check], patterns: list[str] | None) -> list[Check]:
    selection = Selection(select=tuple(patterns or ()))
    return [c for c in checks if selection.holds(c)]


def plan(checks: Iterable[Check], profiles: Iterable[str], patterns: list[str] | None = None, *,
         selection: Selection | None = None) -> tuple[list[Check], list[Check]]:
    """Split checks into (to run, not selected): in one of ``profiles``, matching ``patterns`` (id
    globs) and ``selection``.

    Checks tagged ``final`` run after all others, since they judge what the whole run saw.
    """
    wanted = set(profiles)
    selection = selection or Selection()
    chosen = {c.id for c in select([c for c in checks if c.profile in wanted and selection.holds(c)], patterns)}
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


def _as_waivers(expected_failures) -> list[waiver_list.Waiver]:
    """A list of Waiver entries, or (tests, simple callers) a set of plain check ids."""
    return [w if isinstance(w, waiver_list.Waiver) else waiver_list.Waiver(w, "listed") for w in expected_failures]


def apply_waivers(results: list[Result], expected_failures) -> None:
    """Listed checks that fail become WAIVED; listed checks that pass become UNEXPECTED-PASS.

    A waiver pinned to a message waives only a failure whose message contains it: a check that
    fails differently stays FAILED, with the pin named.
    """
    entries = _as_waivers(expected_failures)
    for result in results:
        waiver = waiver_list.find(entries, result.check.id)
        if waiver is None:
            continue
        waiver.used_by.append(result.check.id)
        if result.verdict in (Verdict.FAILED, Verdict.NON_STRICT, Verdict.UNIMPLEMENTED):
            if waiver.message is not None and waiver.message not in result.message:
                result.message += f" [not waived: the waiver expects a failure message containing {waiver.message!r}]"
                continue
            result.verdict = Verdict.WAIVED
            result.message = f"{result.message} [waived: {waiver.reason}]"
        elif result.verdict is Verdict.OK:
            result.verdict = Verdict.UNEXPECTED_PASS
            result.message = (f"listed as an expected failure ({waiver.reason}), but passed: "
                              "remove it from the list")


def run(checks: list[Check], ctx: Context, *, expected_failures=(), strict: bool = False,
        on_result=None, on_start=None, not_selected: Iterable[Check] = (), profiles: Iterable[str] = (),
        deadline: float | None = None, fail_fast: bool = False, interrupted=None) -> Run:
    """Run ``checks`` in order and judge each.

    ``deadline`` (a ``time.monotonic()`` instant) and ``fail_fast`` stop the run between checks; a
    check already running finishes (each of its requests is bounded by the client's timeout).
    Ctrl-C stops it too: the KeyboardInterrupt, or ``interrupted()`` turning true. The second covers an
    interrupt that Python swallowed (one raised inside a garbage-collector callback is only printed).
    The checks that did not run are NOT-RUN and the run is ``incomplete``.
    """
    waivers = _as_waivers(expected_failures)
    outcome = Run(ctx.target, strict=strict, profiles=tuple(profiles))
    started = time.monotonic()
    ordered = sorted(checks, key=lambda c: c.final)
    done = 0
    try:
        for check in ordered:
            if interrupted is not None and interrupted():
                outcome.incomplete = "interrupted (Ctrl-C)"
                break
            if deadline is not None and time.monotonic() >= deadline:
                outcome.incomplete = "the --deadline passed"
                break
            if on_start:
                on_start(check)
            result = run_check(check, ctx)
            apply_waivers([result], waivers)
            outcome.results.append(result)
            done += 1
            if on_result:
                on_result(result)
            if fail_fast and is_failing(result, strict=strict):
                outcome.incomplete = f"--fail-fast: {check.id} failed the run"
                break
    except KeyboardInterrupt:
        outcome.incomplete = "interrupted (Ctrl-C)"
    if outcome.incomplete is None and interrupted is not None and interrupted():
        outcome.incomplete = "interrupted (Ctrl-C)"  # during the last check, and swallowed there
    outcome.results += [Result(check, Verdict.NOT_RUN, f"not run: {outcome.incomplete}") for check in ordered[done:]]
    outcome.results += [Result(check, Verdict.NOT_SELECTED, "outside the selected profiles or --select")
                        for check in not_selected]
    outcome.seconds = time.monotonic() - started
    outcome.unused_waivers = [w.pattern for w in waivers if not w.used_by]
    outcome.facts = {k: v for k, v in ctx.facts.items() if not k.startswith("_")}
    return outcome
