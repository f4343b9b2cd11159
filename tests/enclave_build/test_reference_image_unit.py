"""The reference image's build inputs without an engine: the lock, the mirror, the base's tar."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from enclave_build import reference_image as ri

SDE = ri.SOURCE_DATE_EPOCH


def test_the_lock_pins_every_wheel_by_hash_and_covers_what_enclave_mode_imports(tmp_path):
    lock = ri.read_requirements(ri.IMAGE_DIR / "requirements.txt")
    assert all(hashes for _, hashes in lock.values())
    # Run the enclave side's start-up (store, master key, simulated NSM, the server module) and a
    # few messages in a fresh interpreter; list the distributions its modules came from. (The
    # Docker tests run the harness against the image itself, where only the lock is installed.)
    probe = f"""
import sys
before = set(sys.modules)  # what site.py loaded (.pth hooks), not the enclave
import importlib.metadata as md, json, sysconfig
from pathlib import Path
from reference.cli import build_enclave
from reference.config import Config
import reference.enclave.server
enclave = build_enclave(Config.from_env(data_dir=Path({str(tmp_path)!r}), nsm="simulated",
                                        insecure_dev_master_key_file=True))  # KMS mode needs boto3: not in the lock yet
for kind, body in [("public-key", b""), ("attest", b"{{}}"), ("attestation-dev-root", b""), ("envelope", b"{{}}")]:
    enclave.handle_message(kind, body)
purelib = sysconfig.get_paths()["purelib"]
owners = md.packages_distributions()
tops = {{m.split(".")[0] for m, mod in list(sys.modules.items())
        if m not in before and (getattr(mod, "__file__", None) or "").startswith(purelib)}}
print(json.dumps(sorted({{d.lower() for t in tops for d in owners.get(t, [])}})))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    imported = set(json.loads(out.splitlines()[-1]))
    assert imported, "the probe saw no third-party module: it does not measure anything"
    assert imported <= set(lock), f"enclave mode imports {sorted(imported - set(lock))}, not in the lock"


def test_the_installer_is_pip_pinned_by_hash():
    digest, name = ri.read_installer(ri.IMAGE_DIR / "installer.sha256")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert name.startswith("pip-") and name.endswith("-py3-none-any.whl")


def test_a_requirement_without_a_hash_is_refused(tmp_path):
    p = tmp_path / "requirements.txt"
    p.write_text("cbor2==6.3.0\n")
    with pytest.raises(ri.ReferenceImageError):
        ri.read_requirements(p)
    p.write_text("cbor2>=6 --hash=sha256:" + "0" * 64 + "\n")
    with pytest.raises(ri.ReferenceImageError):
        ri.read_requirements(p)


@pytest.mark.parametrize("base", ["debian:bookworm", "vault-reference-base:bookworm", "sha256:abc", "python:3.11@sha256:12"])
def test_an_unpinned_base_is_refused_before_any_build(base):
    with pytest.raises(ri.ReferenceImageError, match="pinned"):
        ri.build_reference_image(".", base_image=base, client=object())


def test_the_mirror_comes_from_the_apt_sources(tmp_path):
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
                      "Types: deb\n# a comment\nURIs: http://mirror.example/debian/\nSuites: bookworm\n")
    one_line = tmp_path / "sources.list"
    one_line.write_text("# deb http://old.example/debian bookworm main\ndeb [arch=amd64] http://other.example/debian bookworm main\n")
    assert ri.apt_mirror([deb822, one_line]) == "http://mirror.example/debian"
    assert ri.apt_mirror([one_line]) == "http://other.example/debian"
    assert ri.apt_mirror([tmp_path / "missing.list"]) == ri.DEFAULT_MIRROR


def _tree(root: Path, when: int) -> None:
    for rel, data in [("etc/hostname", "builder-42\n"), ("etc/shadow", "root:*:20419:0:99999:7:::\n"),
                      ("usr/lib/python3.11/__pycache__/os.cpython-311.pyc", "x"), ("usr/lib/python3.11/os.py", "os"),
                      ("var/log/dpkg.log", f"{when} install\n"), ("var/lib/dpkg/status", "Package: python3\n")]:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(data)
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/python3").symlink_to("python3.11")
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(Path(dirpath, name), (when, when), follow_symlinks=False)


def test_the_base_tar_does_not_depend_on_the_build_time_or_host(tmp_path):
    digests = []
    for i, when in enumerate((SDE + 1000, SDE + 99999)):
        root = tmp_path / f"root{i}"
        _tree(root, when)
        (root / "etc/hostname").write_text(f"host-{i}\n")
        ri.normalise_rootfs(root)
        assert not (root / "etc/hostname").exists()
        assert not (root / "usr/lib/python3.11/__pycache__").exists()
        assert list((root / "var/log").iterdir()) == []
        assert (root / "etc/shadow").read_text() == f"root:*:{SDE // 86400}:0:99999:7:::\n"
        assert os.lstat(root / "var/lib/dpkg/status").st_mtime == SDE
        digests.append(ri.rootfs_tar(root, tmp_path / f"root{i}.tar"))
    assert digests[0] == digests[1]
