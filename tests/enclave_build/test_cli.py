"""``vault-eif`` build / describe / pcr, with nitro-cli's JSON field names (§9.8)."""

from __future__ import annotations

import json
import subprocess
import sys

from enclave_build.cli import main

from . import eif_oracle
from .conftest import APP_CONFIG, app_layers, docker_save_archive, make_eif


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_build_describe_and_pcr_from_an_archive(tmp_path, blobs_dir, p384_identity, capsys):
    archive = docker_save_archive(tmp_path / "app.tar", app_layers(), APP_CONFIG, tag="hello:v1")
    (tmp_path / "cert.pem").write_bytes(p384_identity[0])
    (tmp_path / "key.pem").write_bytes(p384_identity[1])
    (tmp_path / "meta.json").write_text('{"Team": "vault", "Ticket": 7}')
    eif_path, meas_path = tmp_path / "app.eif", tmp_path / "app.pcrs.json"
    code, out, err = _run(capsys, "build", "--image-archive", str(archive), "--blobs", str(blobs_dir), "--output-file", str(eif_path),
                          "--signing-certificate", str(tmp_path / "cert.pem"), "--private-key", str(tmp_path / "key.pem"),
                          "--name", "vault", "--version", "0.1", "--metadata", str(tmp_path / "meta.json"), "--measurements-file", str(meas_path))
    assert code == 0, err
    built = json.loads(out)
    assert list(built) == ["Measurements"] and list(built["Measurements"]) == ["HashAlgorithm", "PCR0", "PCR1", "PCR2", "PCR8"]
    assert json.loads(meas_path.read_text()) == built
    assert out.startswith('{\n  "Measurements": {\n    "HashAlgorithm": "Sha384 { ... }",')

    code, out, err = _run(capsys, "describe", "--eif-path", str(eif_path))
    assert code == 0, err
    d = json.loads(out)
    assert d["EifVersion"] == 4 and d["Measurements"] == built["Measurements"]
    assert d["IsSigned"] and d["CheckCRC"] and d["SignatureCheck"]
    assert (d["ImageName"], d["ImageVersion"]) == ("vault", "0.1")
    assert d["Metadata"]["Team"] == "vault" and d["Metadata"]["BuildTool"] == "vault-eif"
    assert list(d["Metadata"])[:6] == ["BuildTime", "BuildTool", "BuildToolVersion", "OperatingSystem", "KernelVersion", "DockerInfo"]
    o = eif_oracle.parse_eif(eif_path.read_bytes())
    assert {k: d["Measurements"][k] for k in ("PCR0", "PCR1", "PCR2")} == o["pcrs"]

    code, out, _ = _run(capsys, "pcr", "--signing-certificate", str(tmp_path / "cert.pem"))
    assert code == 0 and json.loads(out) == {"PCR8": built["Measurements"]["PCR8"]}
    ramdisk = tmp_path / "rd.img"
    ramdisk.write_bytes(o["sections"][3]["data"])
    code, out, _ = _run(capsys, "pcr", "--input", str(ramdisk))
    assert code == 0 and json.loads(out) == {"PCR": eif_oracle._pcr([o["sections"][3]["data"]])}


def test_describe_reports_a_bad_crc_and_exits_non_zero(tmp_path, capsys):
    data, _ = make_eif(tmp_path)
    bad = bytearray(data)
    bad[600] ^= 1
    (tmp_path / "bad.eif").write_bytes(bad)
    code, out, _ = _run(capsys, "describe", "--eif-path", str(tmp_path / "bad.eif"))
    assert code == 1 and json.loads(out)["CheckCRC"] is False


def test_malformed_eif_gives_an_error_code_on_stderr(tmp_path, capsys):
    data, _ = make_eif(tmp_path)
    (tmp_path / "short.eif").write_bytes(data[:-5])
    code, out, err = _run(capsys, "describe", "--eif-path", str(tmp_path / "short.eif"))
    assert code == 1 and out == "" and "[eif/truncated]" in err


def test_build_needs_key_and_certificate_together(tmp_path, blobs_dir, capsys):
    archive = docker_save_archive(tmp_path / "app.tar", app_layers(), APP_CONFIG)
    code, _, err = _run(capsys, "build", "--image-archive", str(archive), "--blobs", str(blobs_dir), "--output-file", str(tmp_path / "x.eif"),
                        "--signing-certificate", str(archive))
    assert code == 1 and "[sign/bad-key]" in err


def test_console_script_module_runs():
    r = subprocess.run([sys.executable, "-m", "enclave_build.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "build" in r.stdout and "describe" in r.stdout and "pcr" in r.stdout
