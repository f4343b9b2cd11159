"""Reports CI can gate on: JSON (full detail, versioned schema), JUnit XML and a self-contained HTML page.

``report.json`` follows ``harness/schemas/report-v1.schema.json`` (shipped in the package); its
``schemaVersion`` changes only when a member changes meaning or type. ``junit.xml`` validates
against both the Jenkins xunit plugin's ``junit-10.xsd`` and the Apache Ant JUnit schema, the two
that CI dashboards read: one ``testcase`` per check, named by id, section and level.
"""

from __future__ import annotations

import html
import json
import platform
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from .runner import Result, Run, is_failing
from .suites.registry import SPEC_VERSION, Verdict

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "report-v1.schema.json"


def harness_version() -> str:
    try:
        return metadata.version("nitro-vault-reference")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def _versions() -> dict:
    found = {}
    for name in ["pynacl", "cryptography", "httpx", "hypothesis", "cbor2"]:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    found["python"] = platform.python_version()
    return found


@dataclass
class RunInfo:
    """What the report says about the run itself, beside the results."""

    options: dict[str, Any] = field(default_factory=dict)  # the CLI options, as given or defaulted
    seed: int | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


def as_text(value: Any) -> str | None:
    """``expected``/``actual`` as one type for every consumer: null, or the value as JSON text
    (bytes as a hex string; anything JSON cannot hold as its repr)."""
    if value is None:
        return None
    try:
        return json.dumps(_jsonable(value), ensure_ascii=False, allow_nan=False)
    except ValueError:
        return repr(value)


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


def _result_json(result: Result, strict: bool) -> dict:
    check = result.check
    return {
        "id": check.id,
        "section": check.section,
        "profile": check.profile,
        "level": check.level.value,
        "tags": sorted(check.tags),
        "requirement": check.requirement,
        "verdict": result.verdict.value,
        "failsRun": is_failing(result, strict=strict),
        "message": result.message,
        "expected": as_text(result.expected),
        "actual": as_text(result.actual),
        "seconds": round(result.seconds, 4),
    }


def to_json(run: Run, info: RunInfo | None = None) -> dict:
    info = info or RunInfo()
    return {
        "schemaVersion": SCHEMA_VERSION,
        "tool": "vault-harness",
        "harnessVersion": harness_version(),
        "specVersion": SPEC_VERSION,
        "target": run.target,
        "startedAt": info.started_at.isoformat(timespec="seconds"),
        "seconds": round(run.seconds, 3),
        "seed": info.seed,
        "options": _jsonable(info.options),
        "libraries": _versions(),
        "strict": run.strict,
        "profiles": list(run.profiles),
        "passed": run.passed(),
        "incomplete": run.incomplete,
        "unusedWaivers": list(run.unused_waivers),
        "counts": run.counts(),
        "facts": _jsonable(run.facts),
        "results": [_result_json(r, run.strict) for r in run.results],
    }


# ---- JUnit XML ------------------------------------------------------------------------------------

def _case_name(result: Result) -> str:
    return f"{result.check.id} [§{result.check.section} {result.check.level.value}]"


def _detail(result: Result) -> str:
    lines = [result.message]
    if result.expected is not None or result.actual is not None:
        lines += [f"expected: {as_text(result.expected)}", f"actual: {as_text(result.actual)}"]
    lines.append(f"requirement (§{result.check.section}): {result.check.requirement}")
    return "\n".join(lines)


def _xml_text(text: str) -> str:
    """XML 1.0 cannot carry most control characters, whatever the escaping: show them as \\xNN."""
    return "".join(ch if ch in "\t\n\r" or 0x20 <= ord(ch) < 0xD800 or 0xE000 <= ord(ch) < 0xFFFE
                   or ord(ch) >= 0x10000 else f"\\x{ord(ch):02x}" for ch in text)


def to_junit(run: Run, info: RunInfo | None = None) -> bytes:
    """JUnit XML valid against Jenkins' junit-10.xsd and the Ant JUnit schema.

    OK and INFORMATIONAL are passes (an observation goes to the suite's system-out, the one place
    both schemas allow it); what fails the run is a failure (ERROR an error); WAIVED, NOT-SELECTED,
    NOT-RUN and a SHOULD left unimplemented are skipped with their verdict as the message; a
    NON-STRICT SHOULD that does not fail the run is a pass with a line in system-out. An
    incomplete run adds one failing testcase, ``vault-harness/run-complete``.
    """
    info = info or RunInfo()
    stamp = info.started_at.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")
    suite = ET.Element("testsuite", name="vault-conformance", timestamp=stamp,
                       hostname=socket.gethostname() or "localhost", time=f"{run.seconds:.3f}")
    properties = ET.SubElement(suite, "properties")
    for name, value in (("target", run.target), ("profiles", ",".join(run.profiles)),
                        ("seed", "" if info.seed is None else str(info.seed)), ("strict", str(run.strict).lower()),
                        ("harnessVersion", harness_version()), ("specVersion", SPEC_VERSION),
                        ("passed", str(run.passed()).lower())):
        ET.SubElement(properties, "property", name=name, value=_xml_text(value))
    notes: list[str] = []
    failures = errors = skipped = 0
    for result in run.results:
        case = ET.SubElement(suite, "testcase", classname=f"vault.{result.check.area}", name=_case_name(result),
                             time=f"{result.seconds:.4f}")
        verdict = result.verdict
        message = _xml_text(f"{verdict.value}: {result.message}"[:500])
        if verdict is Verdict.ERROR:
            errors += 1
            ET.SubElement(case, "error", type=verdict.value, message=message).text = _xml_text(_detail(result))
        elif is_failing(result, strict=run.strict):
            failures += 1
            ET.SubElement(case, "failure", type=verdict.value, message=message).text = _xml_text(_detail(result))
        elif verdict in (Verdict.WAIVED, Verdict.NOT_SELECTED, Verdict.NOT_RUN, Verdict.UNIMPLEMENTED):
            skipped += 1
            ET.SubElement(case, "skipped", message=message)
        elif verdict in (Verdict.INFORMATIONAL, Verdict.NON_STRICT):
            notes.append(f"{verdict.value} {result.check.id}: {result.message}")
    if run.incomplete:
        failures += 1
        case = ET.SubElement(suite, "testcase", classname="vault.harness", name="vault-harness/run-complete",
                             time="0")
        ET.SubElement(case, "failure", type="INCOMPLETE", message=_xml_text(run.incomplete)).text = (
            "the run stopped before every selected check ran; what did not run was not shown to conform")
    suite.set("tests", str(len(suite.findall("testcase"))))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    ET.SubElement(suite, "system-out").text = _xml_text("\n".join(notes))
    ET.SubElement(suite, "system-err").text = ""
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)


# ---- HTML -----------------------------------------------------------------------------------------

_VERDICT_CLASS = {
    Verdict.OK: "ok", Verdict.INFORMATIONAL: "info", Verdict.NON_STRICT: "warn", Verdict.WAIVED: "warn",
    Verdict.NOT_SELECTED: "muted", Verdict.NOT_RUN: "muted", Verdict.UNIMPLEMENTED: "bad", Verdict.FAILED: "bad",
    Verdict.ERROR: "bad", Verdict.UNEXPECTED_PASS: "bad",
}

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1d1d1f}
h1{font-size:1.4em;margin:0 0 .3em} .meta{color:#555;margin-bottom:1em}
.verdict{font-weight:600;font-size:1.2em} .pass{color:#1a7f37} .fail{color:#cf222e}
table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #ddd;
vertical-align:top} th{background:#f6f8fa;position:sticky;top:0}
.ok{color:#1a7f37}.info{color:#0969da}.warn{color:#9a6700}.bad{color:#cf222e;font-weight:600}.muted{color:#888}
details{margin:2px 0} pre{white-space:pre-wrap;word-break:break-all;margin:4px 0;background:#f6f8fa;padding:4px}
.filters{margin:1em 0} .filters label{margin-right:1em} .hidden{display:none}
"""

_SCRIPT = """
(function () {
  var boxes = document.querySelectorAll('.filters input[type=checkbox]');
  var text = document.getElementById('filter-text');
  function apply() {
    var shown = {};
    boxes.forEach(function (b) { shown[b.value] = b.checked; });
    var needle = text.value.toLowerCase();
    var visible = 0;
    document.querySelectorAll('tr.result').forEach(function (row) {
      var match = shown[row.dataset.verdict] && row.dataset.search.indexOf(needle) !== -1;
      row.classList.toggle('hidden', !match);
      if (match) { visible += 1; }
    });
    document.getElementById('shown').textContent = String(visible);
  }
  boxes.forEach(function (b) { b.addEventListener('change', apply); });
  text.addEventListener('input', apply);
  apply();
}());
"""


def to_html(run: Run, info: RunInfo | None = None) -> str:
    """One self-contained page (no external resources): the verdict, counts, and every check with
    its requirement, message, expected/actual and time, filterable by verdict and text."""
    info = info or RunInfo()
    e = html.escape
    passed = run.passed()
    verdicts = sorted({r.verdict for r in run.results}, key=lambda v: list(Verdict).index(v))
    boxes = "".join(
        f'<label><input type="checkbox" value="{e(v.value)}"{"" if v in (Verdict.NOT_SELECTED,) else " checked"}> '
        f'<span class="{_VERDICT_CLASS[v]}">{e(v.value)}</span> ({run.counts().get(v.value, 0)})</label>'
        for v in verdicts)
    rows = []
    for result in run.results:
        check = result.check
        detail = ""
        if result.message:
            detail += f"<div>{e(result.message)}</div>"
        if result.expected is not None or result.actual is not None:
            detail += (f"<details><summary>expected / actual</summary><pre>expected: {e(str(as_text(result.expected)))}"
                       f"</pre><pre>actual: {e(str(as_text(result.actual)))}</pre></details>")
        search = e(f"{check.id} {check.section} {check.profile} {check.requirement} {result.message}".lower())
        rows.append(
            f'<tr class="result" data-verdict="{e(result.verdict.value)}" data-search="{search}">'
            f'<td class="{_VERDICT_CLASS[result.verdict]}">{e(result.verdict.value)}</td>'
            f"<td><code>{e(check.id)}</code></td><td>§{e(check.section)}</td><td>{e(check.level.value)}</td>"
            f"<td>{e(check.profile)}</td><td>{e(check.requirement)}{detail}</td><td>{result.seconds:.2f}</td></tr>")
    incomplete = f"<div class=\"fail\">Incomplete: {e(run.incomplete)}</div>" if run.incomplete else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vault-harness: {e(run.target)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>
<body>
<h1>Vault conformance report</h1>
<div class="meta">target <code>{e(run.target)}</code> · profiles {e(", ".join(run.profiles))} ·
started {e(info.started_at.isoformat(timespec="seconds"))} · {run.seconds:.1f} s · seed {e(str(info.seed))} ·
vault-harness {e(harness_version())}, spec {e(SPEC_VERSION)}{" · strict" if run.strict else ""}</div>
<div class="verdict {"pass" if passed else "fail"}" id="overall">{"PASSED" if passed else "FAILED"}</div>
{incomplete}
<div class="filters">{boxes}<label>text <input id="filter-text" type="search"></label>
showing <span id="shown">{len(run.results)}</span> of {len(run.results)}</div>
<table><thead><tr><th>verdict</th><th>check</th><th>section</th><th>level</th><th>profile</th>
<th>requirement and result</th><th>s</th></tr></thead>
<tbody>
{"".join(rows)}
</tbody></table>
<script>{_SCRIPT}</script>
</body></html>
"""


def write_all(directory: Path, run: Run, info: RunInfo) -> list[Path]:
    """report.json, junit.xml and report.html in ``directory`` (which the CLI checked up front).

    Text a target sent can hold lone surrogates, which UTF-8 cannot carry: they are written as
    ``\\udXXX`` escapes (in report.json that is JSON's own escape for them, so the value reads back)."""
    written = []
    for name, content in (("report.json", json.dumps(to_json(run, info), indent=2, ensure_ascii=False)),
                          ("junit.xml", to_junit(run, info)), ("report.html", to_html(run, info))):
        path = directory / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "backslashreplace"))
        written.append(path)
    return written
