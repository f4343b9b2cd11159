"""The harness's reports against the schemas their readers use: report.json against the shipped
JSON Schema, junit.xml against Jenkins' xunit junit-10.xsd and Apache Ant's JUnit schema (copied
verbatim into vectors/junit/), and report.html rendered by headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from importlib import resources

import jsonschema
import pytest
from lxml import etree

import vectors
from harness import report, runner, waivers
from harness.suites.registry import Check, Level, Verdict
from tests.harness.test_runner import CTX, make


def _schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.fromstring(resources.files(vectors).joinpath("junit", name).read_bytes()))


JUNIT_SCHEMAS = {"jenkins": "jenkins-xunit-junit-10.xsd", "ant": "ant-junit.xsd"}


def every_verdict_run(**run_options) -> runner.Run:
    """One run holding every verdict the harness gives, with hostile text in the messages."""
    checks = [make("a/ok", Level.MUST, "pass"), make("a/failed", Level.MUST, "fail"),
              make("a/should", Level.SHOULD, "fail"), make("a/info", Level.INFO, "observe"),
              make("a/unimpl", Level.MUST, "unimplemented"), make("a/unimpl-should", Level.SHOULD, "unimplemented"),
              make("a/error", Level.MUST, "crash"), make("a/waived", Level.MUST, "fail"),
              make("a/unexpected", Level.MUST, "pass")]
    hostile = Check("a/hostile", "1.1", Level.MUST, "requirement <&> \"quoted\"",
                    lambda ctx: (_ for _ in ()).throw(
                        runner.CheckFailed("bad \x00\x1b[31m <tag> & \ud800 \U0001F600", expected=b"\x00\xff",
                                           actual={"k": [1, None]})), profile="core")
    not_selected = [Check("b/elsewhere", "1.1", Level.MUST, "r", lambda ctx: None, profile="accounts")]
    entries = waivers.parse("a/waived | known | broken\na/unexpected | believed broken\nz/* | nothing here")
    return runner.run(checks + [hostile], CTX, expected_failures=entries, not_selected=not_selected,
                      profiles=["core"], **run_options)


def test_the_every_verdict_run_really_holds_every_verdict():
    got = {r.verdict for r in every_verdict_run().results}
    assert got == set(Verdict) - {Verdict.NOT_RUN}
    assert every_verdict_run(fail_fast=True).incomplete  # and NOT-RUN comes from an incomplete run


@pytest.mark.parametrize("options", [{}, {"fail_fast": True}, {"strict": True}])
def test_report_json_validates_against_the_shipped_schema(options):
    schema = json.loads(report.SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    document = report.to_json(every_verdict_run(**options), report.RunInfo(options={"examples": 3}, seed=7))
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(document)
    # Typed expected/actual: null or JSON text, whatever the check raised with.
    results = {r["id"]: r for r in document["results"]}
    if not options.get("fail_fast"):
        assert results["a/hostile"]["expected"] == '"00ff"'
        assert json.loads(results["a/hostile"]["actual"]) == {"k": [1, None]}
        assert document["unusedWaivers"] == ["z/*"]
    assert results["a/ok"]["expected"] is None
    assert document["seed"] == 7 and document["schemaVersion"] == 1


def test_written_reports_read_back_whatever_text_the_target_sent(tmp_path):
    report.write_all(tmp_path, every_verdict_run(), report.RunInfo())
    document = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    hostile = next(r for r in document["results"] if r["id"] == "a/hostile")
    assert "\ud800" in hostile["message"] and "\U0001F600" in hostile["message"]  # the lone surrogate survives
    etree.fromstring((tmp_path / "junit.xml").read_bytes())


def test_the_schema_rejects_what_it_must():
    schema = json.loads(report.SCHEMA_PATH.read_text())
    document = report.to_json(every_verdict_run())
    for broken in ({**document, "schemaVersion": 2}, {**document, "extra": 1},
                   {**document, "results": [{**document["results"][0], "expected": 5}]},
                   {**document, "results": [{**document["results"][0], "verdict": "PASSED"}]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


@pytest.mark.parametrize("schema", sorted(JUNIT_SCHEMAS))
@pytest.mark.parametrize("options", [{}, {"fail_fast": True}, {"strict": True}])
def test_junit_validates_against_jenkins_and_ant_schemas(schema, options):
    xml = report.to_junit(every_verdict_run(**options), report.RunInfo(seed=1))
    validator = _schema(JUNIT_SCHEMAS[schema])
    assert validator.validate(etree.fromstring(xml)), validator.error_log


def test_the_old_junit_shape_fails_the_schemas_so_the_check_has_teeth():
    # <properties> inside <testcase>, as the harness once wrote it: Jenkins' xunit plugin refuses it.
    suite = ET.fromstring(report.to_junit(every_verdict_run()))
    ET.SubElement(suite.find("testcase"), "properties")
    for name in JUNIT_SCHEMAS.values():
        assert not _schema(name).validate(etree.fromstring(ET.tostring(suite)))


def test_junit_counts_and_verdict_mapping():
    outcome = every_verdict_run()
    suite = ET.fromstring(report.to_junit(outcome))
    cases = {case.get("name").split(" ")[0]: case for case in suite.findall("testcase")}
    assert cases["a/failed"].get("name") == "a/failed [§1.1 MUST]"
    assert cases["a/failed"].find("failure").get("type") == "FAILED"
    assert cases["a/unexpected"].find("failure").get("type") == "UNEXPECTED-PASS"
    assert cases["a/unimpl"].find("failure").get("type") == "UNIMPLEMENTED"
    assert cases["a/error"].find("error") is not None
    for passing in ("a/ok", "a/info", "a/should"):  # INFORMATIONAL and a non-strict SHOULD pass
        assert len(cases[passing]) == 0, passing
    assert cases["a/waived"].find("skipped").get("message").startswith("WAIVED")
    assert cases["b/elsewhere"].find("skipped").get("message").startswith("NOT-SELECTED")
    assert cases["a/unimpl-should"].find("skipped") is not None
    system_out = suite.find("system-out").text
    assert "INFORMATIONAL a/info: seen" in system_out and "NON-STRICT a/should" in system_out
    failing = [r for r in outcome.results if runner.is_failing(r)]
    assert int(suite.get("failures")) + int(suite.get("errors")) == len(failing)
    assert suite.find("properties/property[@name='passed']").get("value") == "false"


def test_an_incomplete_run_has_a_failing_run_complete_case():
    outcome = every_verdict_run(fail_fast=True)
    suite = ET.fromstring(report.to_junit(outcome))
    complete = suite.find("testcase[@name='vault-harness/run-complete']/failure")
    assert complete is not None and complete.get("type") == "INCOMPLETE"
    assert any(case.find("skipped") is not None and case.find("skipped").get("message").startswith("NOT-RUN")
               for case in suite.findall("testcase"))


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0"]


def _render(page, tmp_path, *extra):
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed")
    return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *extra,
                           page.as_uri()], capture_output=True, text=True, timeout=120)


def test_html_report_renders_in_headless_chromium_without_console_errors(tmp_path):
    outcome = every_verdict_run()
    report.write_all(tmp_path, outcome, report.RunInfo(seed=3))
    page = tmp_path / "report.html"
    shot = tmp_path / "report.png"
    rendered = _render(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,900")
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    console = [line for line in rendered.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    # The page's script ran: NOT-SELECTED rows start hidden, so the count it writes is one less.
    dom = _render(page, tmp_path, "--dump-dom").stdout
    assert f'<span id="shown">{len(outcome.results) - 1}</span>' in dom, dom[-3000:]
    assert 'id="overall">FAILED<' in dom and "&lt;tag&gt;" in dom and "<tag>" not in dom
    print(f"screenshot: {shot}")


def test_a_script_error_in_the_page_would_be_seen(tmp_path):
    page = tmp_path / "broken.html"
    report.write_all(tmp_path, every_verdict_run(), report.RunInfo())
    page = tmp_path / "report.html"
    page.write_text(page.read_text().replace("apply();\n}());", "apply(); undefinedThing();\n}());"))
    rendered = _render(page, tmp_path, "--dump-dom")
    assert any("CONSOLE" in line and "undefinedThing" in line for line in rendered.stderr.splitlines()), \
        rendered.stderr[-2000:]
