"""Verify, don't trust (spec §8.6.7, §9): the harness measures an EIF itself and compares the
target's attested PCRs with it. Small synthetic EIFs; the Docker-built reference image is covered
in tests/enclave_build/test_reference_image.py."""

import json
import sys

import pytest

from enclave_build import Part, assemble_eif
from enclave_build.metadata import BuildInfo, encode_metadata

METADATA = encode_metadata(image_name="test", image_version="1", build_info=BuildInfo(build_time="2026-01-01T00:00:00+00:00"),
                           docker_info={})
from tests.conftest import ServerProcess, free_port
from tests.conformance.test_harness_against_reference import run_harness, verdicts

pytestmark = pytest.mark.server


def make_eif(tmp_path, name: str, payload: bytes):
    parts = {}
    for part, data in {"kernel": b"MZ-kernel" * 50, "boot": b"bootstrap-ramdisk" * 20, "app": payload}.items():
        parts[part] = tmp_path / f"{name}.{part}"
        parts[part].write_bytes(data)
    path = tmp_path / f"{name}.eif"
    with path.open("wb") as out:
        measurements, _ = assemble_eif(out, kernel=Part(parts["kernel"]), cmdline=b"console=ttyS0",
                                       metadata_json=METADATA, ramdisks=[Part(parts["boot"]), Part(parts["app"])])
    (tmp_path / f"{name}.json").write_text(json.dumps({"Measurements": measurements.to_json_obj()}))
    return path, tmp_path / f"{name}.json"


@pytest.fixture
def attesting_vault(tmp_path):
    served_eif, served_pcrs = make_eif(tmp_path, "served", b"the audited application")
    port = free_port()
    server = ServerProcess([sys.executable, "-m", "reference.cli", "serve", "--port", str(port),
                            "--data-dir", str(tmp_path / "data"), "--pcrs-file", str(served_pcrs)],
                           port, tmp_path / "data").start()
    yield server, served_eif
    server.stop()


def test_pcrs_computed_from_the_same_eif_match(attesting_vault, tmp_path):
    server, served_eif = attesting_vault
    code, report, output = run_harness(server.url, tmp_path, "--select", "attestation/*",
                                       "--attestation-root-from-target", "--expected-pcrs-from-eif", str(served_eif))
    assert code == 0, output
    assert verdicts(report)["attestation/plain-document"] == "OK"


def test_one_byte_of_difference_in_the_image_is_caught(attesting_vault, tmp_path):
    server, _ = attesting_vault
    tampered_eif, _ = make_eif(tmp_path, "tampered", b"the audited applicatioN")
    code, report, output = run_harness(server.url, tmp_path, "--select", "attestation/plain-document",
                                       "--attestation-root-from-target", "--expected-pcrs-from-eif", str(tampered_eif))
    assert code == 1 and verdicts(report)["attestation/plain-document"] == "FAILED", output
    assert "policy-pcrs" in output


def test_a_file_that_is_not_an_eif_is_a_usage_error(attesting_vault, tmp_path):
    server, _ = attesting_vault
    bogus = tmp_path / "bogus.eif"
    bogus.write_bytes(b"not an eif")
    code, _, output = run_harness(server.url, tmp_path, "--expected-pcrs-from-eif", str(bogus))
    assert code == 2 and "not a valid EIF" in output
