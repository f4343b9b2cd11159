"""Every stable error code is listed in the spec's table (docs/spec/09-eif.md §9.8) and unique."""

from __future__ import annotations

import re
from pathlib import Path

from enclave_build import errors

SPEC = (Path(__file__).resolve().parents[2] / "docs" / "spec" / "09-eif.md").read_text()


def test_codes_are_unique_and_documented():
    values = [c.value for c in errors.ErrorCode]
    assert len(values) == len(set(values))
    table = SPEC[SPEC.index("## 9.8"):SPEC.index("## 9.9")]
    documented = set(re.findall(r"`([a-z]+/[a-z0-9-]+)`", table))
    assert set(values) == documented, (set(values) ^ documented)


def test_every_error_class_has_a_code_and_one_root():
    def walk(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    for cls in walk(errors.EifBuildError):
        assert isinstance(cls.code, errors.ErrorCode), cls
        e = cls("x")
        assert str(e).startswith(f"[{cls.code.value}]") and isinstance(e, errors.EifBuildError)
