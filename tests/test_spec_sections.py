"""Every harness check cites a section that exists in the project's spec (docs/spec/README.md).

A check's ``section`` (e.g. "3.4") must be the number of a ``## N.M Title`` (or ``### N.M.K``) heading in one of
``docs/spec/*.md``; a check citing a missing or renumbered section fails here, by name.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.suites.registry import all_checks

SPEC_DIR = Path(__file__).resolve().parent.parent / "docs" / "spec"
_HEADING = re.compile(r"^#{2,3} (\d+(?:\.\d+)+) \S", re.MULTILINE)
_CHECK_ID = re.compile(r"`([a-z0-9-]+/[a-z0-9-]+)`")


def spec_sections(spec_dir: Path = SPEC_DIR) -> dict[str, str]:
    """Section number -> file name, for every ``## N.M Title`` heading in the spec."""
    sections: dict[str, str] = {}
    for path in sorted(spec_dir.glob("*.md")):
        for number in _HEADING.findall(path.read_text(encoding="utf-8")):
            if number in sections:
                raise AssertionError(f"section {number} is defined in both {sections[number]} and {path.name}")
            sections[number] = path.name
    return sections


def test_spec_has_sections():
    assert SPEC_DIR.is_dir(), f"missing spec folder {SPEC_DIR}"
    assert len(spec_sections()) >= 10, "too few numbered sections: is the heading format '## N.M Title'?"


def test_heading_pattern():
    text = "## 3.4 Freshness\n## 10.1 Per-request\n# 3. Title\n### 3.4.1 Deeper\n##3.5 No space\n"
    assert _HEADING.findall(text) == ["3.4", "10.1", "3.4.1"]


@pytest.mark.parametrize("check", all_checks(), ids=lambda check: check.id)
def test_check_section_exists(check):
    sections = spec_sections()
    assert check.section in sections, (
        f"check {check.id} cites section {check.section}, which is not a '## {check.section} Title' "
        f"heading in docs/spec/*.md (sections found: {', '.join(sorted(sections, key=_key))})"
    )


def test_check_ids_named_in_spec_exist():
    """A check id quoted in the spec (`area/short-name`) must be a registered check."""
    registered = {check.id for check in all_checks()}
    areas = {check.area for check in all_checks()}
    stale = []
    for path in sorted(SPEC_DIR.glob("*.md")):
        for name in _CHECK_ID.findall(path.read_text(encoding="utf-8")):
            if name.split("/", 1)[0] in areas and name not in registered:
                stale.append(f"{path.name}: {name}")
    assert not stale, f"the spec names checks that are not registered: {stale}"


def _key(number: str) -> tuple[int, ...]:
    return tuple(int(part) for part in number.split("."))


def test_the_spec_version_the_harness_reports_is_the_one_the_spec_states():
    from harness.suites.registry import SPEC_VERSION

    stated = re.search(r"\*\*Specification version: ([0-9.]+)\*\*", (SPEC_DIR / "README.md").read_text(encoding="utf-8"))
    assert stated and stated.group(1) == SPEC_VERSION
