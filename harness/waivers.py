"""Expected-failure lists (``--expected-failures FILE``), in the spirit of tlsfuzzer's ``-x``/``-X``.

One entry a line; ``#`` starts a comment line; blank lines are ignored::

    # PATTERN            | REASON (required)                      | MESSAGE (optional)
    e2e/round-trip       | our proxy re-encodes bodies (TICKET-12)
    errors/type-*        | error types land in v2                 | expected 'invalid_input'

PATTERN is a check id or a glob over ids. REASON says why the failure is accepted; an entry
without one is refused, so a waiver list never outlives the memory of why it exists. MESSAGE,
when given, pins the failure: the check is waived only while its failure message contains that
text, so a check that starts failing *differently* fails the run again.

The file is read as UTF-8 with or without a byte-order mark. Every problem is a ``WaiverError``
naming the file and line; the CLI turns it into one line and exit 2.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path


class WaiverError(ValueError):
    pass


@dataclass
class Waiver:
    pattern: str
    reason: str
    message: str | None = None
    line: int = 0
    used_by: list[str] = field(default_factory=list)  # ids of selected checks it matched

    def matches(self, check_id: str) -> bool:
        return fnmatch.fnmatchcase(check_id, self.pattern)


def parse(text: str, source: str = "<waivers>") -> list[Waiver]:
    waivers = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [part.strip() for part in line.split("|")]
        if len(parts) > 3:
            raise WaiverError(f"{source}:{number}: at most three fields (PATTERN | REASON | MESSAGE)")
        pattern = parts[0]
        reason = parts[1] if len(parts) > 1 else ""
        message = parts[2] if len(parts) > 2 and parts[2] else None
        if not pattern or any(ch.isspace() for ch in pattern):
            raise WaiverError(f"{source}:{number}: the first field must be one check id or glob, not {pattern!r}")
        if not reason:
            raise WaiverError(f"{source}:{number}: {pattern} has no reason: write '{pattern} | why it is accepted'")
        waivers.append(Waiver(pattern, reason, message, number))
    return waivers


def load(path: Path) -> list[Waiver]:
    if path.is_dir():
        raise WaiverError(f"{path}: is a directory, not a waiver file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise WaiverError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise WaiverError(f"{path}: not UTF-8 text (byte {error.start})") from None
    if "\x00" in text:
        raise WaiverError(f"{path}: not a text file (NUL byte)")
    return parse(text, str(path))


def check_known(waivers: list[Waiver], known_ids: set[str], source: str) -> None:
    """Every entry must name at least one check that exists (a typo must not waive nothing silently)."""
    for waiver in waivers:
        if not any(waiver.matches(check_id) for check_id in known_ids):
            raise WaiverError(f"{source}:{waiver.line}: {waiver.pattern} matches no check id (see `vault-harness list`)")


def find(waivers: list[Waiver], check_id: str) -> Waiver | None:
    """The first entry whose pattern matches ``check_id``."""
    return next((waiver for waiver in waivers if waiver.matches(check_id)), None)
