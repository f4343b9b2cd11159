"""Verdicts, waivers and reports of the harness runner, with checks defined here (no target)."""

import xml.etree.ElementTree as ET

from harness import report, runner
from harness.suites.registry import Check, CheckFailed, CheckUnimplemented, Context, Level, Observation, Verdict


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
    return Check(id, "1.1", level, "requirement text", func)


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


def test_unimplemented_is_reported_and_waivable():
    assert verdict(Level.MUST, "unimplemented") == (Verdict.UNIMPLEMENTED, True)
    assert verdict(Level.MUST, "unimplemented", waived=True) == (Verdict.WAIVED, True)


def test_waived_failure_passes_and_unexpected_pass_fails():
    assert verdict(Level.MUST, "fail", waived=True) == (Verdict.WAIVED, True)
    assert verdict(Level.MUST, "pass", waived=True) == (Verdict.UNEXPECTED_PASS, False)


def test_junit_marks_failures_and_json_carries_expected_and_actual():
    outcome = runner.run([make("a/ok", Level.MUST, "pass"), make("a/bad", Level.MUST, "fail")], CTX)
    suite = ET.fromstring(report.to_junit(outcome))
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    assert suite.find("testcase[@name='a/bad']/failure") is not None
    assert suite.find("testcase[@name='a/ok']/failure") is None
    bad = report.to_json(outcome)["results"][1]
    assert (bad["verdict"], bad["expected"], bad["actual"]) == ("FAILED", 1, 2)
