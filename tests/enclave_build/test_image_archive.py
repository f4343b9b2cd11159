"""Customer ramdisk and whole EIF from image archives with no Docker engine (§9.5.3, §9.9)."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from enclave_build import Blobs, build_eif_from_archive, errors
from enclave_build.build import write_customer_ramdisk
from enclave_build.describe import describe_json, inspect_eif
from enclave_build.image import ArchiveImageSource
from enclave_build.signing import SigningKey

from . import eif_oracle
from .conftest import APP_CONFIG, X86_CMDLINE, app_layers, docker_save_archive, layer_tar, oci_archive


def _ramdisk(path) -> bytes:
    out = io.BytesIO()
    with ArchiveImageSource(str(path)) as src:
        write_customer_ramdisk(src, out)
    return out.getvalue()


def test_merged_layers_in_docker_export_order(tmp_path):
    with ArchiveImageSource(str(docker_save_archive(tmp_path / "app.tar", app_layers(), APP_CONFIG))) as src:
        with src.entries() as it:
            es = [(e.name, e.type, e.linkname) for e in it]
    names = [n for n, _, _ in es]
    assert names == [
        ".dockerenv", "bin/", "bin/busybox", "bin/hello.sh", "bin/ls", "bin/sh",
        "dev/", "dev/console", "dev/pts/", "dev/shm/",
        "etc/", "etc/hostname", "etc/hosts", "etc/mtab", "etc/resolv.conf",
        "home/", "home/user-file", "proc/", "sys/", "var/", "var/cache/",
    ]
    d = {n: (t, l) for n, t, l in es}
    assert d["bin/sh"] == ("1", "bin/busybox")  # hard link to the first name in walk order
    assert d["etc/mtab"] == ("2", "/proc/mounts")
    assert "etc/old.conf" not in names and "var/cache/x" not in names  # whiteout, opaque dir


def test_docker_save_and_oci_layout_give_the_same_ramdisk(tmp_path):
    a = _ramdisk(docker_save_archive(tmp_path / "save.tar", app_layers(), APP_CONFIG))
    b = _ramdisk(oci_archive(tmp_path / "oci.tar", app_layers(), APP_CONFIG, gzip_layers=True))
    c = _ramdisk(oci_archive(tmp_path / "oci-plain.tar", app_layers(), APP_CONFIG, gzip_layers=False))
    assert a == b == c
    es = eif_oracle.parse_cpio(a)
    by = {e["name"]: e for e in es}
    assert by["cmd"]["data"] == b"/bin/hello.sh\n"
    assert by["env"]["data"] == b"PATH=/usr/bin:/bin\nHELLO=Hello from the enclave side!\n"
    assert by["rootfs/bin/hello.sh"]["data"] == b"#!/bin/sh\necho hello\n"
    assert by["rootfs/bin/sh"]["data"] == b"busybox" and by["rootfs/bin/sh"]["mode"] & 0o170000 == 0o120000
    assert (by["rootfs/home/"]["uid"], by["rootfs/home/"]["mode"]) == (1000, 0o40700)
    assert by["rootfs/bin/"]["mtime"] == 1700000000


def test_entrypoint_used_only_without_cmd(tmp_path):
    cfg = json.loads(json.dumps(APP_CONFIG))
    cfg["config"] = {"Entrypoint": ["/bin/busybox", "sh"], "Env": None}
    by = {e["name"]: e for e in eif_oracle.parse_cpio(_ramdisk(docker_save_archive(tmp_path / "e.tar", app_layers(), cfg)))}
    assert by["cmd"]["data"] == b"/bin/busybox\nsh\n" and by["env"]["data"] == b""
    cfg["config"] = {"Cmd": ["c"], "Entrypoint": ["e"]}
    by = {e["name"]: e for e in eif_oracle.parse_cpio(_ramdisk(docker_save_archive(tmp_path / "f.tar", app_layers(), cfg)))}
    assert by["cmd"]["data"] == b"c\n"
    cfg["config"] = {}
    with pytest.raises(errors.ImageSourceError) as ei:
        _ramdisk(docker_save_archive(tmp_path / "g.tar", app_layers(), cfg))
    assert ei.value.code is errors.ErrorCode.IMAGE_CONFIG


def test_bad_archives_raise_typed_errors(tmp_path):
    p = tmp_path / "x.tar"
    p.write_bytes(b"not a tar")
    with pytest.raises(errors.ImageSourceError):
        ArchiveImageSource(str(p))
    with tarfile.open(p, "w") as tf:
        ti = tarfile.TarInfo("hello")
        tf.addfile(ti, io.BytesIO())
    with pytest.raises(errors.ImageSourceError, match="manifest"):
        ArchiveImageSource(str(p))


def test_build_from_archive_end_to_end(tmp_path, blobs_dir, p384_identity):
    archive = docker_save_archive(tmp_path / "app.tar", app_layers(), APP_CONFIG, tag="hello:v1")
    blobs = Blobs.from_dir(blobs_dir)
    out = tmp_path / "app.eif"
    res = build_eif_from_archive(archive, blobs, out)
    data = out.read_bytes()
    o = eif_oracle.parse_eif(data)
    assert o["header"]["crc_ok"] and o["header"]["flags"] == 0
    assert [s["type"] for s in o["sections"]] == ["kernel", "cmdline", "metadata", "ramdisk", "ramdisk"]
    assert o["sections"][0]["data"] == (blobs_dir / "bzImage").read_bytes()
    assert o["sections"][1]["data"] == X86_CMDLINE  # trimmed, no NUL
    assert o["pcrs"] == {"PCR0": res.measurements.pcr0, "PCR1": res.measurements.pcr1, "PCR2": res.measurements.pcr2}
    boot = eif_oracle.parse_cpio(o["sections"][3]["data"])
    assert [e["name"] for e in boot] == ["dev", "init", "nsm.ko"]
    assert boot[1]["data"] == (blobs_dir / "init").read_bytes()
    md = json.loads(o["sections"][2]["data"])
    assert md["ImageName"] == "hello"  # from the archive's RepoTags, "hello:v1"
    assert md["BuildMetadata"]["OperatingSystem"] == "Linux" and md["BuildMetadata"]["KernelVersion"] == "4.14.256"
    assert md["ImageVersion"] == res.image_config.image_id.removeprefix("sha256:")
    d = describe_json(inspect_eif(io.BytesIO(data)))
    assert d["Measurements"] == res.to_json_obj()["Measurements"] and d["IsSigned"] is False
    assert list(d) == ["EifVersion", "Measurements", "IsSigned", "CheckCRC", "ImageName", "ImageVersion", "Metadata"]
    # rebuilt later: other BuildTime, same PCRs; signed: same PCR0-2 plus PCR8
    res2 = build_eif_from_archive(archive, blobs, tmp_path / "again.eif", build_time=__import__("datetime").datetime(2030, 1, 1, tzinfo=__import__("datetime").timezone.utc))
    assert res2.measurements == res.measurements and (tmp_path / "again.eif").read_bytes() != data
    res3 = build_eif_from_archive(archive, blobs, tmp_path / "signed.eif", signing_key=SigningKey.from_pem(*p384_identity))
    assert (res3.measurements.pcr0, res3.measurements.pcr2) == (res.measurements.pcr0, res.measurements.pcr2)
    assert res3.measurements.pcr8 and eif_oracle.parse_eif((tmp_path / "signed.eif").read_bytes())["header"]["crc_ok"]


def test_pcr2_changes_with_the_image_and_pcr1_does_not(tmp_path, blobs_dir):
    blobs = Blobs.from_dir(blobs_dir)
    a = build_eif_from_archive(docker_save_archive(tmp_path / "a.tar", app_layers(), APP_CONFIG), blobs, tmp_path / "a.eif")
    layers = app_layers() + [layer_tar([{"name": "extra", "data": b"1"}])]
    b = build_eif_from_archive(docker_save_archive(tmp_path / "b.tar", layers, APP_CONFIG), blobs, tmp_path / "b.eif")
    assert a.measurements.pcr1 == b.measurements.pcr1
    assert a.measurements.pcr2 != b.measurements.pcr2 and a.measurements.pcr0 != b.measurements.pcr0


def test_arm64_image_sets_the_header_flag(tmp_path, blobs_dir):
    (blobs_dir / "Image").write_bytes(b"arm64-kernel")
    cfg = dict(APP_CONFIG, architecture="arm64")
    build_eif_from_archive(docker_save_archive(tmp_path / "a.tar", app_layers(), cfg), Blobs.from_dir(blobs_dir, arch="aarch64"), tmp_path / "a.eif")
    assert eif_oracle.parse_eif((tmp_path / "a.eif").read_bytes())["header"]["flags"] == 1


def test_blobs_come_from_the_environment(tmp_path, blobs_dir, monkeypatch):
    monkeypatch.setenv("NITRO_CLI_BLOBS", str(blobs_dir))
    assert Blobs.from_dir().kernel == blobs_dir / "bzImage"
    (blobs_dir / "nsm.ko").unlink()
    with pytest.raises(errors.BlobsError):
        Blobs.from_dir()


def _tar(fmt, names) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for n in names:
            ti = tarfile.TarInfo(n)
            ti.type = tarfile.DIRTYPE if n.endswith("/") else tarfile.REGTYPE
            tf.addfile(ti, io.BytesIO() if ti.type == tarfile.REGTYPE else None)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_stream_entries_keep_go_style_directory_names(fmt):
    from enclave_build.image import tar_stream_entries

    long_dir = "d" * 60 + "/" + "e" * 60 + "/"  # > 100 bytes: ustar prefix, pax path or GNU longname
    data = _tar(fmt, ["short/", long_dir, long_dir + "f"])
    assert [e.name for e in tar_stream_entries(io.BytesIO(data))] == ["short/", long_dir, long_dir + "f"]


def test_stream_entries_keep_a_directory_name_without_slash():
    from enclave_build.image import tar_stream_entries

    raw = bytearray(_tar(tarfile.USTAR_FORMAT, ["dir/"]))
    raw[3] = 0  # name "dir/" -> "dir"
    raw[148:156] = b"        "
    raw[148:155] = b"%06o\0" % sum(raw[:512])
    assert [e.name for e in tar_stream_entries(io.BytesIO(bytes(raw)))] == ["dir"]


def test_pax_path_is_taken_verbatim():
    from enclave_build.image import tar_stream_entries

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("ustar-name")
        ti.type = tarfile.DIRTYPE
        ti.pax_headers = {"path": "pax-name"}
        tf.addfile(ti)
    assert [e.name for e in tar_stream_entries(io.BytesIO(buf.getvalue()))] == ["pax-name"]


def test_ustar_prefix_is_joined_to_the_name():
    from enclave_build.image import tar_stream_entries

    raw = bytearray(_tar(tarfile.USTAR_FORMAT, ["p" * 80 + "/" + "n" * 80 + "/"]))
    assert raw[345:346] == b"p" and raw[0:81] == b"n" * 80 + b"/"
    raw[80] = 0  # drop the name's trailing slash, keep the prefix
    raw[148:156] = b"        "
    raw[148:155] = b"%06o\0" % sum(raw[:512])
    assert [e.name for e in tar_stream_entries(io.BytesIO(bytes(raw)))] == ["p" * 80 + "/" + "n" * 80]


def test_files_with_absolute_paths_lose_one_slash_and_get_parents():
    from enclave_build.ramdisk import FileSpec, linuxkit_files_entries

    es = list(linuxkit_files_entries([FileSpec("/opt/app/run", 0o640, contents=b"x"), FileSpec("opt/app/two", 0o600, contents=b"")]))
    assert [(e.name, e.type, oct(e.mode)) for e in es] == [
        ("opt", "5", "0o750"), ("opt/app", "5", "0o750"), ("opt/app/run", "0", "0o640"), ("opt/app/two", "0", "0o600")]
