"""``vault-eif`` on hostile input (issue 8, item 9): deep JSON and failed signatures, via the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import zlib

from enclave_build.signing import SigningKey

from . import eif_oracle
from .conftest import APP_CONFIG, SMALL_METADATA, app_layers, make_eif

DEEP = 1000  # past Python's default recursion limit: json.loads would raise RecursionError


def _deep(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "enclave_build.cli", *argv], capture_output=True, text=True)


def _assert_typed_failure(r: subprocess.CompletedProcess, code: str) -> None:
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and "RecursionError" not in r.stderr, r.stderr
    assert f"[{code}]" in r.stderr, r.stderr


def _archive_with_raw_config(path, config_raw: bytes):
    """A ``docker save`` layout whose config member is the given bytes, verbatim."""
    layers = app_layers()
    cfg_name = hashlib.sha256(config_raw).hexdigest() + ".json"
    with tarfile.open(path, "w") as tf:
        def put(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        names = []
        for i, layer in enumerate(layers):
            put(f"l{i}/layer.tar", layer)
            names.append(f"l{i}/layer.tar")
        put(cfg_name, config_raw)
        put("manifest.json", json.dumps([{"Config": cfg_name, "RepoTags": ["deep:1"], "Layers": names}]).encode())
    return path


def test_build_refuses_deep_custom_metadata_with_a_typed_error(tmp_path, blobs_dir):
    from .conftest import docker_save_archive

    archive = docker_save_archive(tmp_path / "app.tar", app_layers(), APP_CONFIG)
    (tmp_path / "meta.json").write_text('{"a":' + _deep() + "}")
    r = _cli("build", "--image-archive", str(archive), "--blobs", str(blobs_dir), "--output-file", str(tmp_path / "x.eif"),
             "--metadata", str(tmp_path / "meta.json"))
    _assert_typed_failure(r, "eif/bad-metadata")
    assert not (tmp_path / "x.eif").exists() or (tmp_path / "x.eif").stat().st_size == 0


def test_build_refuses_a_deep_image_config_with_a_typed_error(tmp_path, blobs_dir):
    layers = app_layers()
    diff_ids = json.dumps(["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers])
    config = ('{"architecture":"amd64","os":"linux","config":{"Cmd":["/app"]},'
              f'"rootfs":{{"type":"layers","diff_ids":{diff_ids}}},"history":{_deep()}}}').encode()
    archive = _archive_with_raw_config(tmp_path / "deep.tar", config)
    r = _cli("build", "--image-archive", str(archive), "--blobs", str(blobs_dir), "--output-file", str(tmp_path / "x.eif"))
    _assert_typed_failure(r, "eif/bad-metadata")


def test_describe_refuses_deep_metadata_with_a_typed_error(tmp_path):
    meta = json.loads(SMALL_METADATA)
    text = json.dumps(meta)[:-1] + ',"Deep":' + _deep() + "}"
    data, _ = make_eif(tmp_path, metadata_json=text.encode())
    (tmp_path / "deep.eif").write_bytes(data)
    r = _cli("describe", "--eif-path", str(tmp_path / "deep.eif"))
    _assert_typed_failure(r, "eif/bad-metadata")


def test_moderate_nesting_still_describes(tmp_path):
    """The bound is not a blanket refusal: 100 levels (under serde_json's 128) are fine."""
    meta = json.loads(SMALL_METADATA)
    text = json.dumps(meta)[:-1] + ',"Deep":' + _deep(100) + "}"
    data, _ = make_eif(tmp_path, metadata_json=text.encode())
    (tmp_path / "ok.eif").write_bytes(data)
    r = _cli("describe", "--eif-path", str(tmp_path / "ok.eif"))
    assert r.returncode == 0, r.stderr


def _fix_crc(data: bytearray) -> None:
    """Recompute the header CRC (§9.3) so only the signature is wrong."""
    parsed = eif_oracle.parse_eif(bytes(data))
    crc = zlib.crc32(bytes(data[:544]))
    for s in parsed["sections"]:
        crc = zlib.crc32(bytes(data[s["offset"]: s["offset"] + eif_oracle.SEC_LEN + len(s["data"])]), crc)
    data[544:548] = crc.to_bytes(4, "big")


def test_describe_exits_non_zero_when_the_signature_does_not_verify(tmp_path, p384_identity):
    data, _ = make_eif(tmp_path, signing_key=SigningKey.from_pem(*p384_identity))
    (tmp_path / "good.eif").write_bytes(data)
    good = _cli("describe", "--eif-path", str(tmp_path / "good.eif"))
    assert good.returncode == 0 and json.loads(good.stdout)["SignatureCheck"] is True, good.stderr

    bad = bytearray(data)
    signature = next(s for s in eif_oracle.parse_eif(data)["sections"] if s["type"] == "signature")
    last = signature["offset"] + eif_oracle.SEC_LEN + len(signature["data"]) - 1
    bad[last] ^= 1  # the last byte of the COSE signature
    _fix_crc(bad)
    assert eif_oracle.parse_eif(bytes(bad))["header"]["crc_ok"]
    (tmp_path / "bad.eif").write_bytes(bad)
    r = _cli("describe", "--eif-path", str(tmp_path / "bad.eif"))
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 1, r.stdout
    described = json.loads(r.stdout)
    assert described["CheckCRC"] is True and described["SignatureCheck"] is False
