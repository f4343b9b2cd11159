"""Ramdisks byte for byte against linuxkit's own Go code (vectors/eif/ramdisk_linuxkit.json)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
from pathlib import Path

import pytest

from enclave_build.image import tar_stream_entries
from enclave_build.ramdisk import bootstrap_entries, customer_entries, initrd_chunks

from .eif_oracle import parse_cpio

DATA = json.loads((Path(__file__).resolve().parents[2] / "vectors" / "eif" / "ramdisk_linuxkit.json").read_text())
GROUPS = {g["type"]: g["tests"] for g in DATA["testGroups"]}
assert DATA["numberOfTests"] == sum(len(t) for t in GROUPS.values()) == 2


def _bytes(entries) -> bytes:
    return b"".join(bytes(c) for c in initrd_chunks(entries))


@pytest.mark.parametrize("t", GROUPS["Bootstrap"], ids=lambda t: f"ramdisk_linuxkit/{t['tcId']}")
def test_bootstrap_ramdisk_matches_linuxkit(t):
    out = _bytes(bootstrap_entries(bytes.fromhex(t["init"]), bytes.fromhex(t["nsmKo"])))
    assert hashlib.sha256(bytes.fromhex(t["initrd"])).hexdigest() == t["initrdSha256"]
    assert out.hex() == t["initrd"]


@pytest.mark.parametrize("t", GROUPS["Customer"], ids=lambda t: f"ramdisk_linuxkit/{t['tcId']}")
def test_customer_ramdisk_matches_linuxkit(t):
    export = gzip.decompress(base64.b64decode(t["exportTarGzipBase64"]))
    out = _bytes(customer_entries(tar_stream_entries(io.BytesIO(export)), cmd=t["cmd"], env=t["env"]))
    want = bytes.fromhex(t["initrd"])
    assert hashlib.sha256(want).hexdigest() == t["initrdSha256"]
    if out != want:  # name the first differing entry, then fail on the bytes
        for a, b in zip(parse_cpio(out), parse_cpio(want)):
            assert a == b
    assert out == want
    names = [e["name"] for e in parse_cpio(want)]
    assert names.count("rootfs/etc/hosts") == 1 and "rootfs/boot/kernel" in names
