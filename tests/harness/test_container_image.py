"""The harness's container image (harness/image/, python -m harness.image_build), built on the
project's debootstrapped base with a real Docker engine, run against a reference on loopback."""

from __future__ import annotations

import uuid

import pytest

from harness import image_build
from tests.conftest import ROOT, start_reference

pytestmark = [pytest.mark.docker, pytest.mark.server]


@pytest.fixture(scope="module")
def harness_image(docker_client, base_image, tmp_path_factory):
    image_id = image_build.build(ROOT, base_image=base_image, tag=f"vault-harness:test-{uuid.uuid4().hex[:8]}",
                                 client=docker_client, wheels=tmp_path_factory.mktemp("harness-wheels"))
    yield image_id
    try:
        docker_client.images.remove(image_id, force=True)
    except Exception:
        pass


def _run(docker_client, image_id, *argv) -> tuple[int, str]:
    container = docker_client.containers.run(image_id, list(argv), network_mode="host", detach=True)
    try:
        status = container.wait(timeout=600)["StatusCode"]
        return status, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


def test_the_image_checks_the_reference_and_exits_0(docker_client, harness_image, tmp_path):
    server = start_reference(tmp_path / "data")  # the embedded default: mock KMS, simulated NSM
    try:
        code, output = _run(docker_client, harness_image, "run", "--target", server.url,
                            "--attestation-root-from-target", "--allow-debug", "--quick", "--report-dir", "/tmp/out")
    finally:
        server.stop()
    assert code == 0, output[-4000:]
    assert "\nPASSED: " in output, output[-4000:]


def test_the_image_reports_usage_errors_and_its_version(docker_client, harness_image):
    code, output = _run(docker_client, harness_image, "--version")
    assert code == 0 and output.startswith("vault-harness ")
    code, output = _run(docker_client, harness_image, "run", "--target", "not-a-url")
    assert code == 2 and output.strip().startswith("vault-harness: --target not-a-url")
