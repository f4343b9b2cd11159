"""The local enclave flavour end to end (spec 9.11): the EIF that enclave_build builds boots in a QEMU
microVM, the harness passes against the host front with the EIF's own PCRs, and one changed byte
of the reference changes them so that the same comparison fails.

Needs a Docker engine (the image), ``qemu-system-x86_64`` and the pinned Debian kernel package from
the mirror; CI installs and starts all three (``.ci/run``), so there a missing one fails the test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from enclave_build import inspect_eif
from enclave_build import reference_image as ri
from enclave_build.microvm import blobs as local_blobs
from enclave_build.microvm import launcher

from .test_reference_image import _build, _harness, _repo_copy_with_one_byte_changed

pytestmark = [pytest.mark.docker, pytest.mark.microvm]


@pytest.fixture(scope="session")
def qemu():
    if shutil.which(launcher.QEMU) is None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"{launcher.QEMU} is not installed")


@pytest.fixture(scope="session")
def kernel_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("kernel-package")


@pytest.fixture(scope="session")
def local_blobs_dir(qemu, kernel_cache, tmp_path_factory):
    """The flavour's blobs from the pinned package. If the mirror no longer carries it (backports
    keep only the current build), the current one: the tests compare builds with each other."""
    out = tmp_path_factory.mktemp("local-blobs")
    try:
        local_blobs.build_blobs(out, cache_dir=kernel_cache)
    except local_blobs.LocalBlobsError as e:
        if "cannot download" not in str(e):
            raise
        local_blobs.build_blobs(out, cache_dir=kernel_cache, latest=True)
    return out


@pytest.fixture(scope="session")
def local_a(docker_client, base_image, wheel_dir, local_blobs_dir, tmp_path_factory, built_images):
    from enclave_build.blobs import Blobs

    return _build(docker_client, base_image, wheel_dir, Blobs.from_dir(local_blobs_dir),
                  tmp_path_factory.mktemp("local-a"), built_images, local=True)


def _results(report_dir: Path) -> dict[str, dict]:
    return {r["id"]: r for r in json.loads((report_dir / "report.json").read_text())["results"]}


def _pinned_root(vault, tmp_path: Path) -> Path:
    """The launcher's NSM root, as it announced it: what the verifier pins (never the target's word)."""
    root = tmp_path / "launcher-root.pem"
    root.write_text(vault.ready["nsmRootPem"])
    return root


def test_the_local_eif_boots_and_the_harness_passes_with_its_own_pcrs(local_a, tmp_path):
    with open(local_a["eif"], "rb") as f:
        described = inspect_eif(f).measurements.to_json_obj()
    vault = ri.serve_local(local_a["eif"])
    try:
        # the launcher measured the file it booted, as describe does
        assert vault.ready["measurements"] == described == json.loads(local_a["measurements"].read_text())["Measurements"]
        report = tmp_path / "report"
        status = subprocess.run(
            [sys.executable, "-m", "harness.cli", "run", "--target", vault.url, "--profile", ri.LOCAL_WALK_PROFILES,
             "--attestation-root", str(_pinned_root(vault, tmp_path)), "--expected-pcrs",
             str(local_a["measurements"]), "--report-dir", str(report)], capture_output=True, text=True)
    finally:
        log = vault.stop()
    assert status.returncode == 0, status.stdout[-4000:] + log[-2000:]
    results = _results(report)
    assert results["attestation/plain-document"]["verdict"] == "OK"
    assert results["attestation/envelope-document"]["verdict"] == "OK"
    # the master key came from the mocked KMS through the launcher's proxy, released to this PCR0
    assert vault.ready["kmsKeyArn"].startswith("arn:aws:kms:")
    kms_checks = {i: r["verdict"] for i, r in results.items() if i.startswith("kms/")}
    assert kms_checks and set(kms_checks.values()) <= {"OK", "INFORMATIONAL"}, kms_checks
    # the attested PCRs are the EIF's: the harness names the set it matched
    message = results["attestation/pcrs-expected"]["message"]
    assert all(described[pcr] in message for pcr in ("PCR0", "PCR1", "PCR2"))
    assert not [r for r in results.values() if r["verdict"] == "FAILED"]


def test_one_changed_byte_of_the_reference_changes_pcr2_and_the_comparison_fails(
        docker_client, base_image, wheel_dir, local_blobs_dir, local_a, tmp_path, built_images):
    from enclave_build.blobs import Blobs

    changed = _build(docker_client, base_image, wheel_dir, Blobs.from_dir(local_blobs_dir), tmp_path, built_images,
                     repo_root=_repo_copy_with_one_byte_changed(tmp_path / "repo"), no_cache=False, local=True)
    assert changed["pcrs"].pcr2 != local_a["pcrs"].pcr2
    assert changed["pcrs"].pcr1 == local_a["pcrs"].pcr1  # same kernel, init and modules
    vault = ri.serve_local(changed["eif"])
    try:
        root = _pinned_root(vault, tmp_path)
        status_old, verdicts_old = _harness(vault.url, local_a["measurements"], tmp_path / "report-old", root=root)
        status_new, verdicts_new = _harness(vault.url, changed["measurements"], tmp_path / "report-new", root=root)
    finally:
        vault.stop()
    # the booted, changed EIF attests its own PCRs: the old expectation refuses it, its own accepts it
    assert (status_old, verdicts_old["attestation/plain-document"]) == (1, "FAILED")
    assert (status_new, verdicts_new["attestation/plain-document"]) == (0, "OK")

    # KMS releases the master key only to the expected image: with the key policy on the honest
    # EIF's PCR0, the changed EIF is denied at boot and never answers (not retried: it would end alike)
    with pytest.raises(ri.ReferenceImageError) as refused:
        ri.serve_local(changed["eif"], launcher_args=["--kms-pcr0", local_a["pcrs"].pcr0])
    assert "AccessDeniedException" in str(refused.value) and "exited with status 1" in str(refused.value)
    assert "the enclave's command ended before answering" in str(refused.value)
    assert "no boot answered" not in str(refused.value)  # not booted again: it would end the same way


def test_the_blobs_are_the_same_bytes_when_made_again(local_blobs_dir, kernel_cache, tmp_path):
    again = tmp_path / "again"
    manifest = json.loads((local_blobs_dir / "blobs.json").read_text())
    deb = kernel_cache / manifest["package"]
    local_blobs.build_blobs(again, deb=deb)
    assert json.loads((again / "blobs.json").read_text())["blobs"] == manifest["blobs"]
    for name in manifest["blobs"]:
        assert (again / name).read_bytes() == (local_blobs_dir / name).read_bytes()


def test_the_walk_with_the_local_enclave(base_image, wheel_dir, kernel_cache, local_blobs_dir, local_a, tmp_path):
    """``walk --local-enclave``: build → describe → boot the EIF → harness, as a user runs it."""
    out = tmp_path / "walk"
    proc = subprocess.run([sys.executable, "-m", "enclave_build.reference_image", "walk", "--local-enclave",
                           "--base", base_image, "--blobs", str(local_blobs_dir), "--wheel-dir", str(wheel_dir),
                           "--output", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "booting the EIF in a microVM" in proc.stderr
    assert re.search(r"enclave up in [\d.]+ s", proc.stderr)
    described = json.loads(proc.stdout[: proc.stdout.index("\n}\n") + 2])
    assert described["Measurements"]["PCR2"] == local_a["pcrs"].pcr2  # same inputs, same image
    assert re.search(r"^\s+OK\s+attestation/plain-document\b", proc.stdout, re.M)


def test_an_image_that_attests_for_itself_is_caught_only_by_pinning_the_launchers_root(
        docker_client, local_blobs_dir, local_a, tmp_path, built_images):
    """A forging image: the honest image's files, but its enclave runs its own simulated NSM that
    claims the honest EIF's PCRs. Its documents are signed by a root the guest made itself. The
    harness pinning the launcher's root refuses it. Trusting the root the target serves accepts
    it, which is why the walk pins the launcher's root."""
    from enclave_build.blobs import Blobs

    context = tmp_path / "forger"
    context.mkdir()
    (context / "claimed-pcrs.json").write_text(local_a["measurements"].read_text())
    (context / "Dockerfile").write_text(
        f"FROM {local_a['image']}\n"
        "COPY claimed-pcrs.json /etc/claimed-pcrs.json\n"
        'CMD ["vault-reference", "enclave", "--listen", "serial:org.nitro-vault.link", "--data-dir", "/run/vault", '
        '"--nsm", "simulated", "--pcrs-file", "/etc/claimed-pcrs.json", "--insecure-dev-master-key-file"]\n')
    forger, _ = docker_client.images.build(path=str(context), network_mode="none", rm=True, pull=False)
    built_images.append(forger.id)
    eif = tmp_path / "forger.eif"
    ri.build_reference_eif(Blobs.from_dir(local_blobs_dir), eif, image=forger.id, client=docker_client)
    vault = ri.serve_local(eif)
    try:
        assert vault.ready["measurements"]["PCR2"] != local_a["pcrs"].pcr2  # what really booted
        pinned, verdicts_pinned = _harness(vault.url, local_a["measurements"], tmp_path / "pinned",
                                           root=_pinned_root(vault, tmp_path), select="attestation/plain-document")
        trusting, verdicts_trusting = _harness(vault.url, local_a["measurements"], tmp_path / "trusting",
                                               select="attestation/plain-document")
    finally:
        vault.stop()
    assert (pinned, verdicts_pinned["attestation/plain-document"]) == (1, "FAILED")
    assert (trusting, verdicts_trusting["attestation/plain-document"]) == (0, "OK")
