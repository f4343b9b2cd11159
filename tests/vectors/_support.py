"""Helpers shared by the vector tests: iterate Wycheproof-shaped files, name cases by tcId."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import vectors


def cases(name: str, *, group_type: str | None = None) -> list:
    """One pytest param per test case of vector file ``name``: (group, test), id ``<name>/<tcId>``.

    Cases flagged ``Slow`` carry ``pytest.mark.slow``. Loading happens at collection time, so a missing or schema-invalid file is a collection
    error (a failure), never a skip.
    """
    data = vectors.load(name)
    params = []
    for group, test in _walk(data):
        if group_type is None or group["type"] == group_type:
            marks = [pytest.mark.slow] if "Slow" in test["flags"] else []
            params.append(pytest.param(group, test, id=f"{name}/{test['tcId']}", marks=marks))
    if not params:
        raise AssertionError(f"{name}: no cases (group type {group_type!r})")
    return params


def _walk(data: dict) -> Iterator[tuple[dict, dict]]:
    for group in data["testGroups"]:
        for test in group["tests"]:
            yield group, test


def h(value: str) -> bytes:
    return bytes.fromhex(value)
