"""Verdicts, waivers and reports of the harness runner, with checks defined here (no target)."""

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import report, runner
from harness.protocol.client import ProtocolViolation
from harness.suites.registry import (
    AREA_PROFILES, PROFILES, Check, CheckFailed, CheckUnimplemented, Context, Level, Observation, Verdict, all_checks,
    check,
)


def make(id, level, behaviour):
    def func(ctx):
        if behaviour == "fail":
            raise CheckFailed("broken", expected=1, actual=2)
        if behaviour == "observe":
            raise Observation("seen")
        if behaviour == "unimplemented":
            raise CheckUnimplemented("no such operation")
        if behaviour == "crash":
            raise ZeroDivisionError("harness bug")
        if behaviour == "violation":
            raise ProtocolViolation("reply did not open")
        if behaviour == "unreachable":
            raise ConnectionError("connection refused")
    return Check(id, "1.1", level, "requirement text", func, profile="core")


CTX = Context("http://target", client=None)


def verdict(level, behaviour, waived=False, strict=False):
    outcome = runner.run([make("a/b", level, behaviour)], CTX, expected_failures={"a/b"} if waived else set(), strict=strict)
    return outcome.results[0].verdict, outcome.passed()


def test_must_failure_fails_the_run():
    assert verdict(Level.MUST, "fail") == (Verdict.FAILED, False)


def test_should_failure_is_non_strict_and_fails_only_under_strict():
    assert verdict(Level.SHOULD, "fail") == (Verdict.NON_STRICT, True)
    assert verdict(Level.SHOULD, "fail", strict=True) == (Verdict.NON_STRICT, False)


def test_info_never_fails():
    assert verdict(Level.INFO, "observe") == (Verdict.INFORMATIONAL, True)
    assert verdict(Level.INFO, "fail") == (Verdict.INFORMATIONAL, True)


def test_crash_is_an_error_and_fails_the_run():
    assert verdict(Level.MUST, "crash") == (Verdict.ERROR, False)


def test_unimplemented_must_fails_the_run_and_is_waivable():
    # Within a selected profile every MUST is required: a missing feature is not a pass.
    assert verdict(Level.MUST, "unimplemented") == (Verdict.UNIMPLEMENTED, False)
    assert verdict(Level.MUST, "unimplemented", waived=True) == (Verdict.WAIVED, True)


def test_unimplemented_should_fails_only_under_strict():
    assert verdict(Level.SHOULD, "unimplemented") == (Verdict.UNIMPLEMENTED, True)
    assert verdict(Level.SHOULD, "unimplemented", strict=True) == (Verdict.UNIMPLEMENTED, False)


def test_waived_failure_passes_and_unexpected_pass_fails():
    assert verdict(Level.MUST, "fail", waived=True) == (Verdict.WAIVED, True)
    assert verdict(Level.MUST, "pass", waived=True) == (Verdict.UNEXPECTED_PASS, False)


def test_junit_marks_failures_and_json_carries_expected_and_actual():
    outcome = runner.run([make("a/ok", Level.MUST, "pass"), make("a/bad", Level.MUST, "fail")], CTX)
    suite = ET.fromstring(report.to_junit(outcome))
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    assert suite.find("testcase[@name='a/bad [§1.1 MUST]']/failure") is not None
    assert suite.find("testcase[@name='a/ok [§1.1 MUST]']/failure") is None
    bad = report.to_json(outcome)["results"][1]
    # expected/actual are always null or JSON text, whatever the check put there
    assert (bad["verdict"], bad["expected"], bad["actual"]) == ("FAILED", "1", "2")


BEHAVIOURS = ["pass", "fail", "observe", "unimplemented", "crash", "violation", "unreachable"]


@given(st.sampled_from([Level.SHOULD, Level.INFO]), st.sampled_from(BEHAVIOURS), st.booleans(), st.booleans())
def test_info_and_should_never_yield_failed_whatever_the_target_does(level, behaviour, waived, strict):
    got, passed = verdict(level, behaviour, waived=waived, strict=strict)
    assert got is not Verdict.FAILED
    if level is Level.INFO:
        assert got in (Verdict.INFORMATIONAL, Verdict.WAIVED, Verdict.UNEXPECTED_PASS)
        assert passed or got is Verdict.UNEXPECTED_PASS


def test_a_protocol_violation_is_judged_by_the_checks_level():
    assert verdict(Level.MUST, "violation") == (Verdict.FAILED, False)
    assert verdict(Level.SHOULD, "violation") == (Verdict.NON_STRICT, True)
    assert verdict(Level.INFO, "violation") == (Verdict.INFORMATIONAL, True)


def test_plan_keeps_profiles_reports_the_rest_as_not_selected_and_runs_final_checks_last():
    checks = [make("e2e/last", Level.MUST, "pass"), make("e2e/a", Level.MUST, "pass")]
    checks[0] = Check("e2e/last", "1.1", Level.MUST, "r", checks[0].func, frozenset({"final"}), "core")
    checks.append(Check("service-account/x", "1.1", Level.MUST, "r", make("x", Level.MUST, "fail").func,
                        profile="accounts"))
    to_run, skipped = runner.plan(checks, ["core"])
    assert [c.id for c in to_run] == ["e2e/a", "e2e/last"]
    assert [c.id for c in skipped] == ["service-account/x"]
    outcome = runner.run(to_run, CTX, not_selected=skipped, profiles=["core"])
    assert outcome.passed()  # the failing accounts check was not selected, so it did not run
    assert {r.check.id: r.verdict for r in outcome.results}["service-account/x"] is Verdict.NOT_SELECTED
    narrowed, _ = runner.plan(checks, ["core", "accounts"], ["e2e/a"])
    assert [c.id for c in narrowed] == ["e2e/a"]


def test_every_registered_check_has_a_defined_profile_and_areas_map_to_profiles():
    assert set(AREA_PROFILES.values()) <= set(PROFILES)
    for registered in all_checks():
        assert registered.profile in PROFILES, registered.id


def test_a_check_of_an_area_without_profile_cannot_register():
    with pytest.raises(ValueError, match="profile"):
        check("nowhere/x", section="1.1", level=Level.MUST, requirement="r")(lambda ctx: None)


def test_an_interrupt_noted_but_swallowed_still_stops_the_run():
    flag = {"set": False}

    def swallowing(ctx):  # as if Ctrl-C arrived and Python dropped the KeyboardInterrupt
        flag["set"] = True

    checks = [Check("a/first", "1.1", Level.MUST, "r", swallowing, profile="core"), make("a/second", Level.MUST, "pass")]
    outcome = runner.run(checks, CTX, interrupted=lambda: flag["set"])
    assert outcome.incomplete == "interrupted (Ctrl-C)" and not outcome.passed()
    assert [r.verdict for r in outcome.results] == [Verdict.OK, Verdict.NOT_RUN]
    flag["set"] = False
    last = runner.run([Check("a/only", "1.1", Level.MUST, "r", swallowing, profile="core")], CTX,
                      interrupted=lambda: flag["set"])
    assert last.incomplete == "interrupted (Ctrl-C)"  # noted during the last check
    assert [r.verdict for r in last.results] == [Verdict.OK]
