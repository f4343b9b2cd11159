"""The reference's enclave image under a real Docker engine (§9.5.3, §9.9, EIF.md §6).

Skipped only when no engine is reachable (the ``docker_client`` fixture); CI starts one. The base
is debootstrapped once per session (root and ``debootstrap`` needed), or taken from
``$VAULT_ENCLAVE_BASE`` (an image ID) when a CI job has built it already. Blobs are synthetic:
the real kernel is not available here, and PCR2 (the image) does not depend on the blobs.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest

from enclave_build import inspect_eif
from enclave_build import reference_image as ri

pytestmark = pytest.mark.docker

REPO = ri.default_repo_root()
RUN_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def blobs(tmp_path_factory):
    return ri.write_synthetic_blobs(tmp_path_factory.mktemp("blobs"))


def _build(docker_client, base_image, wheel_dir, blobs, out: Path, built_images, *, repo_root=REPO, no_cache=True,
           local=False):
    tag = f"{ri.IMAGE_REPOSITORY}:test-{RUN_ID}-{uuid.uuid4().hex[:6]}"
    image = ri.build_reference_image(repo_root, base_image=base_image, client=docker_client, wheel_dir=wheel_dir,
                                     tag=tag, no_cache=no_cache, workdir=out)
    built_images.append(image)
    if local:  # the local enclave flavour (9.11): the same image, the microVM's command
        image = ri.build_local_image(image, client=docker_client, tag=tag + "-local")
        built_images.append(image)
    eif = out / "vault-reference.eif"
    result = ri.build_reference_eif(blobs, eif, image=image, client=docker_client)
    with open(eif, "rb") as f:
        measured = inspect_eif(f).measurements  # read back from the file, not the build's word
    assert measured == result.measurements
    assert json.loads(ri.measurements_path(eif).read_text()) == result.to_json_obj()
    return {"image": image, "eif": eif, "pcrs": measured, "measurements": ri.measurements_path(eif)}


@pytest.fixture(scope="session")
def build_a(docker_client, base_image, wheel_dir, blobs, tmp_path_factory, built_images):
    return _build(docker_client, base_image, wheel_dir, blobs, tmp_path_factory.mktemp("a"), built_images)


def _export(docker_client, image: str) -> dict[str, tarfile.TarInfo | bytes]:
    container = docker_client.containers.create(image)
    try:
        data = b"".join(container.export())
    finally:
        container.remove(force=True)
    out: dict = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for ti in tf:
            out[ti.name] = (ti, tf.extractfile(ti).read() if ti.isfile() else b"")
    return out


# --- (a) reproducible ----------------------------------------------------------------------------


def test_the_debootstrapped_base_is_the_same_layer_when_built_again(docker_client, base_image, tmp_path):
    """Same Debian packages, same tar: only ``docker import``'s timestamp (the image ID) differs."""
    again = ri.build_base(docker_client, tag=f"{ri.BASE_REPOSITORY}:test-{RUN_ID}-again", workdir=tmp_path)
    try:
        layers = docker_client.images.get(again).attrs["RootFS"]["Layers"]
        assert layers == docker_client.images.get(base_image).attrs["RootFS"]["Layers"]
        assert again != base_image
    finally:
        docker_client.images.remove(again, force=True)


def test_two_clean_builds_from_the_pinned_base_give_identical_pcrs(docker_client, base_image, wheel_dir, blobs,
                                                                    build_a, tmp_path, built_images):
    second = _build(docker_client, base_image, wheel_dir, blobs, tmp_path, built_images)
    # two real builds (no layer cache: the image IDs differ by their creation time) ...
    assert second["image"] != build_a["image"]
    # ... give the same customer ramdisk and so the same measurements
    assert (second["pcrs"].pcr0, second["pcrs"].pcr1, second["pcrs"].pcr2) == \
        (build_a["pcrs"].pcr0, build_a["pcrs"].pcr1, build_a["pcrs"].pcr2)
    assert second["measurements"].read_bytes() == build_a["measurements"].read_bytes()


def test_every_file_the_image_adds_has_the_source_date_epoch(docker_client, build_a):
    files = _export(docker_client, build_a["image"])
    added = {n: ti for n, (ti, _) in files.items() if n.startswith(("opt/vault", "usr/local/bin/vault-reference"))}
    assert "opt/vault/site/reference/cli.py" in added and "usr/local/bin/vault-reference" in added
    wrong = {n: ti.mtime for n, ti in added.items() if ti.mtime != ri.SOURCE_DATE_EPOCH}
    assert wrong == {}
    assert not any(n.startswith("tmp/build") for n in files), "the build context stays out of the image"
    owners = {(ti.uid, ti.gid) for ti in added.values()}
    assert owners == {(0, 0)}


def test_bytecode_is_checked_hash_and_only_the_locked_wheels_are_installed(docker_client, build_a):
    files = _export(docker_client, build_a["image"])
    pycs = {n: data for n, (ti, data) in files.items() if n.endswith(".pyc")}
    assert "opt/vault/site/reference/__pycache__/cli.cpython-311.pyc" in pycs
    not_outside = [n for n in pycs if not n.startswith("opt/vault/site/")]
    assert not_outside == []
    # PEP 552: flags 0b11 = hash-based and checked; no source mtime in the file
    assert {int.from_bytes(d[4:8], "little") for d in pycs.values()} == {3}
    # tarfile drops the trailing "/" of directory names
    dists = sorted(re.sub(r"-[^-]+\.dist-info$", "", n[len("opt/vault/site/"):]).lower()
                   for n in files if re.fullmatch(r"opt/vault/site/[^/]+\.dist-info", n))
    locked = sorted(ri.read_requirements(ri.IMAGE_DIR / "requirements.txt"))
    assert dists == locked
    assert not any("/pip/" in n for n in files if n.startswith("opt/vault")), "the installer is not installed"


# --- (b) one byte of code ------------------------------------------------------------------------


def _repo_copy_with_one_byte_changed(dst: Path) -> Path:
    shutil.copytree(REPO / "reference", dst / "reference", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "enclave_build" / "image", dst / "enclave_build" / "image")
    cli = dst / "reference" / "cli.py"
    text = cli.read_bytes()
    i = text.index(b"# ")  # the first comment: changes no behaviour
    cli.write_bytes(text[: i + 2] + bytes([text[i + 2] ^ 0x20]) + text[i + 3:])
    assert sum(a != b for a, b in zip(text, cli.read_bytes())) == 1
    return dst


def _harness(url: str, expected: Path, report_dir: Path, *, root: Path | None = None,
             select: str = "attestation/*") -> tuple[int, dict[str, str]]:
    """The harness's status and verdicts; the root pinned from ``root``, else taken from the target."""
    trust = ["--attestation-root", str(root)] if root is not None else ["--attestation-root-from-target"]
    status = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--target", url, "--select", select,
                             *trust, "--expected-pcrs", str(expected),
                             "--report-dir", str(report_dir)], capture_output=True, text=True).returncode
    report = json.loads((report_dir / "report.json").read_text())
    return status, {r["id"]: r["verdict"] for r in report["results"]}


def test_one_byte_of_reference_code_changes_pcr2_and_the_harness_refuses_the_old_vault(
        docker_client, base_image, wheel_dir, blobs, build_a, tmp_path, built_images):
    changed_repo = _repo_copy_with_one_byte_changed(tmp_path / "repo")
    changed = _build(docker_client, base_image, wheel_dir, blobs, tmp_path, built_images,
                     repo_root=changed_repo, no_cache=False)
    old, new = build_a["pcrs"], changed["pcrs"]
    assert new.pcr2 != old.pcr2 and new.pcr0 != old.pcr0
    assert new.pcr1 == old.pcr1  # the bootstrap ramdisk: blobs only

    # A Vault running the old image attests the old PCRs: a verifier expecting the new build
    # refuses it, and the same verifier expecting the old build accepts it.
    vault = ri.serve_image(build_a["image"], ri.hypervisor_pcrs(build_a["eif"]), client=docker_client)
    try:
        status_new, verdicts_new = _harness(vault.url, changed["measurements"], tmp_path / "report-new")
        status_old, verdicts_old = _harness(vault.url, build_a["measurements"], tmp_path / "report-old")
    finally:
        vault.stop()
    assert (status_new, verdicts_new["attestation/plain-document"]) == (1, "FAILED")
    assert (status_old, verdicts_old["attestation/plain-document"]) == (0, "OK")


# --- (c) the walk --------------------------------------------------------------------------------


def test_the_walk_serves_the_measured_image_and_the_harness_passes(docker_client, base_image, wheel_dir, build_a,
                                                                   tmp_path):
    out = tmp_path / "walk"
    proc = subprocess.run([sys.executable, "-m", "enclave_build.reference_image", "walk", "--base", base_image,
                           "--synthetic-blobs", "--wheel-dir", str(wheel_dir), "--output", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # describe-eif JSON first, then the harness's verdicts
    described = json.loads(proc.stdout[: proc.stdout.index("\n}\n") + 2])
    eif = out / "vault-reference.eif"
    with open(eif, "rb") as f:
        info = inspect_eif(f)
    assert described["Measurements"] == info.measurements.to_json_obj()
    assert described["Measurements"]["PCR2"] == build_a["pcrs"].pcr2  # same inputs, same image
    assert re.search(r"^\s+OK\s+attestation/plain-document\b", proc.stdout, re.M)
    # the image it served is the one the EIF records, and its container is gone
    image = ri.eif_image_id(eif)
    assert f"serving image {image}" in proc.stderr
    assert docker_client.containers.list(all=True, filters={"ancestor": image}) == []
    if image != build_a["image"]:
        docker_client.images.remove(image, force=True)
