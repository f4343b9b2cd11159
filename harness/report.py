"""Reports CI can gate on: JSON (full detail) and JUnit XML (for CI dashboards)."""

from __future__ import annotations

import platform
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from importlib import metadata

from .runner import Run, is_failing
from .suites.registry import Verdict


def _versions() -> dict:
    names = ["nitro-vault-reference", "pynacl", "cryptography", "httpx", "hypothesis"]
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    found["python"] = platform.python_version()
    return found


def to_json(run: Run) -> dict:
    return {
        "tool": "vault-harness",
        "target": run.target,
        "generatedAt": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "harnessVersions": _versions(),
        "strict": run.strict,
        "profiles": list(run.profiles),
        "passed": run.passed(),
        "counts": run.counts(),
        "facts": run.facts,
        "results": [r.to_json() for r in run.results],
    }


def to_junit(run: Run) -> bytes:
    suite = ET.Element("testsuite", name="vault-conformance", tests=str(len(run.results)))
    failures = errors = skipped = 0
    for result in run.results:
        case = ET.SubElement(suite, "testcase", classname=result.check.area, name=result.check.id,
                             time=f"{result.seconds:.4f}")
        ET.SubElement(case, "properties").extend([
            ET.Element("property", name="section", value=result.check.section),
            ET.Element("property", name="level", value=result.check.level.value),
            ET.Element("property", name="verdict", value=result.verdict.value),
        ])
        detail = f"{result.message}\nexpected: {result.expected!r}\nactual: {result.actual!r}"
        if result.verdict is Verdict.ERROR:
            errors += 1
            ET.SubElement(case, "error", message=result.message[:500]).text = detail
        elif is_failing(result, strict=run.strict):
            failures += 1
            ET.SubElement(case, "failure", message=result.message[:500]).text = detail
        elif result.verdict is not Verdict.OK:
            skipped += 1
            ET.SubElement(case, "skipped", message=f"{result.verdict.value}: {result.message}"[:500])
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)
