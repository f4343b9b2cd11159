"""Shared fixtures: the real AWS documents (vectors/attestation/aws) and their manifest."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.resources
import json
from dataclasses import dataclass

import pytest

AWS_DIR = importlib.resources.files("vectors") / "attestation" / "aws"


@dataclass(frozen=True)
class RealDoc:
    name: str
    data: bytes
    entry: dict

    @property
    def at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.entry["timestamp_ms"] / 1000, dt.timezone.utc)

    def window(self) -> tuple[dt.datetime, dt.datetime]:
        parse = lambda s: dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        return parse(self.entry["chain_valid_from"]), parse(self.entry["chain_valid_until"])


def load_real_docs() -> list[RealDoc]:
    manifest = json.loads((AWS_DIR / "manifest.json").read_text())
    docs = []
    for entry in manifest["documents"]:
        data = (AWS_DIR / entry["file"]).read_bytes()  # a missing vector fails loudly
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
        docs.append(RealDoc(entry["file"], data, entry))
    assert len(docs) == 5
    return docs


REAL_DOCS = load_real_docs()


def pytest_generate_tests(metafunc):
    if "real_doc" in metafunc.fixturenames:
        metafunc.parametrize("real_doc", REAL_DOCS, ids=[d.name for d in REAL_DOCS])


@pytest.fixture(scope="session")
def aws_root_pem() -> bytes:
    return (AWS_DIR / "aws-nitro-enclaves-root-g1.pem").read_bytes()
