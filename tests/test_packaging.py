"""Packaging (README, "Packaging"): installed, the project's four packages live under one
namespace, ``nitro_vault``, and claim no generic top-level name; in a checkout they stay top-level
and reach each other through ``sibling()``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOP_LEVEL = ("reference", "harness", "enclave_build", "vectors")


def test_every_package_of_the_checkout_is_listed_under_the_namespace():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = sorted("nitro_vault." + str(init.parent.relative_to(ROOT)).replace("/", ".")
                   for top in TOP_LEVEL for init in (ROOT / top).rglob("__init__.py")
                   if "_generate" not in init.parts)
    assert sorted(config["packages"]) == found
    assert config["package-dir"] == {f"nitro_vault.{top}": top for top in TOP_LEVEL}


def test_sibling_names_follow_the_layout():
    import enclave_build
    import harness
    import reference

    assert harness.sibling("vectors") == "vectors" and reference.sibling("harness.cli") == "harness.cli"
    assert enclave_build.sibling("reference.cli") == "reference.cli"


def test_no_package_imports_another_by_its_checkout_name():
    """In the wheel ``harness`` does not exist: a cross-package import must use sibling() or be relative."""
    import re

    absolute = re.compile(r"^\s*(from|import) (reference|harness|enclave_build|vectors)\b", re.M)
    offenders = [f"{path.relative_to(ROOT)}: {m.group(0).strip()}"
                 for top in TOP_LEVEL for path in (ROOT / top).rglob("*.py") if "_generate" not in path.parts
                 for m in absolute.finditer(path.read_text(encoding="utf-8"))]
    assert offenders == []


@pytest.mark.server
def test_the_wheel_holds_only_the_namespace(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".tox", ".git", "build", "node_modules", "reports",
                                                                "__pycache__", ".hypothesis", "*.egg-info"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
                            str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"nitro_vault", "nitro_vault_reference-0.1.0.dist-info"}
    for needed in ("nitro_vault/harness/schemas/report-v1.schema.json", "nitro_vault/vectors/junit/ant-junit.xsd",
                   "nitro_vault/harness/image/Dockerfile", "nitro_vault/enclave_build/image/Dockerfile",
                   "nitro_vault/vectors/envelope_kat.json", "nitro_vault/enclave_build/image/local/Dockerfile",
                   "nitro_vault/enclave_build/microvm/init.c", "nitro_vault/enclave_build/microvm/kernel.lock.json",
                   "nitro_vault/enclave_build/microvm/launcher.py"):
        assert needed in names, needed
    entry_points = zipfile.ZipFile(wheel).read("nitro_vault_reference-0.1.0.dist-info/entry_points.txt").decode()
    assert "vault-harness = nitro_vault.harness.cli:main" in entry_points
