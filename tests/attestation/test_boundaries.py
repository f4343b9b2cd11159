"""Architecture rule: the harness never imports the reference, nor the reference the harness."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest


def _imports(package: str) -> set[str]:
    root = Path(importlib.util.find_spec(package).submodule_search_locations[0])
    names = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return names


@pytest.mark.parametrize(
    "package, forbidden",
    [("harness.attestation", "reference"), ("reference.enclave.nsm", "harness")],
)
def test_no_cross_imports(package, forbidden):
    found = {n for n in _imports(package) if n == forbidden or n.startswith(forbidden + ".")}
    assert not found, f"{package} imports {sorted(found)}"
    assert _imports(package), "scan found nothing: wrong package location"
