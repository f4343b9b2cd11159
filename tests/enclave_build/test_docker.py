"""The EIF build against a real Docker engine (§9.5.3): export via the SDK, and ``docker save``.

Skipped only when no engine is reachable (the ``docker_client`` fixture); CI starts one.
Images are built locally: ``docker import`` of a tiny root filesystem, then a Dockerfile on top.
"""

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path

import pytest

from enclave_build import Blobs, build_eif_from_archive, build_eif_from_docker
from enclave_build.build import write_customer_ramdisk
from enclave_build.cli import main
from enclave_build.image import ArchiveImageSource, DockerImageSource

from . import eif_oracle
from .conftest import APP_CONFIG, app_layers, docker_save_archive

pytestmark = pytest.mark.docker


def _rootfs_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        def add(name, type_=tarfile.REGTYPE, data=b"", mode=0o644, linkname=""):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime, ti.linkname, ti.size = type_, mode, 1600000000, linkname, len(data)
            tf.addfile(ti, io.BytesIO(data) if data else None)
        add("bin", tarfile.DIRTYPE, mode=0o755)
        add("bin/tool", data=b"\x7fELF-tool" * 50, mode=0o755)
        add("bin/tool-hard", tarfile.LNKTYPE, linkname="bin/tool", mode=0o755)
        add("bin/tool-soft", tarfile.SYMTYPE, linkname="tool", mode=0o777)
        add("etc", tarfile.DIRTYPE, mode=0o755)
        add("etc/hosts", data=b"127.0.0.1 image\n")
        add("etc/app.conf", data=b"key=value\n")
        add("usr", tarfile.DIRTYPE, mode=0o755)
        add("usr/share", tarfile.DIRTYPE, mode=0o755)
        add("usr/share/doc.txt", data=b"doc" * 1000)
    return buf.getvalue()


@pytest.fixture(scope="module")
def app_image(docker_client, tmp_path_factory):
    tag = f"eif-test-{uuid.uuid4().hex[:8]}"
    base = docker_client.images.client.api.import_image_from_data(_rootfs_tar(), repository=f"{tag}-base", tag="1")
    del base
    ctx = tmp_path_factory.mktemp("ctx")
    (ctx / "hello.sh").write_bytes(b"#!/bin/sh\necho hello from the enclave\n")
    (ctx / "hello.sh").chmod(0o755)
    (ctx / "Dockerfile").write_text(
        f"FROM {tag}-base:1\nCOPY hello.sh /bin/hello.sh\nENV HELLO=world GREETING=\"two words\"\nCMD [\"/bin/hello.sh\"]\n"
    )
    image, _ = docker_client.images.build(path=str(ctx), tag=f"{tag}:1", rm=True)
    yield f"{tag}:1"
    for ref in (f"{tag}:1", f"{tag}-base:1"):
        docker_client.images.remove(ref, force=True)


def _save(docker_client, ref: str, path: Path) -> Path:
    with open(path, "wb") as f:
        for chunk in docker_client.images.get(ref).save(named=True):
            f.write(chunk)
    return path


def test_engine_export_and_saved_archive_give_the_same_customer_ramdisk(docker_client, app_image, tmp_path):
    via_engine = io.BytesIO()
    write_customer_ramdisk(DockerImageSource(app_image, client=docker_client), via_engine)
    via_archive = io.BytesIO()
    with ArchiveImageSource(str(_save(docker_client, app_image, tmp_path / "img.tar"))) as src:
        write_customer_ramdisk(src, via_archive)
    a, b = via_engine.getvalue(), via_archive.getvalue()
    ea, eb = eif_oracle.parse_cpio(a), eif_oracle.parse_cpio(b)
    assert [(e["name"], e["mode"], e["uid"], e["mtime"], e["data"]) for e in ea] == [
        (e["name"], e["mode"], e["uid"], e["mtime"], e["data"]) for e in eb]
    assert a == b
    by = {e["name"]: e for e in ea}
    assert by["cmd"]["data"] == b"/bin/hello.sh\n"
    assert by["env"]["data"].endswith(b"HELLO=world\nGREETING=two words\n")
    assert by["rootfs/bin/tool-hard"]["data"] == b"tool"
    assert "rootfs/.dockerenv" not in by and "rootfs/etc/hostname" not in by and "rootfs/dev/console" not in by
    assert by["rootfs/usr/share/"]["mtime"] == 1600000000  # untouched by the Dockerfile


def test_build_from_engine_matches_build_from_saved_archive(docker_client, app_image, tmp_path, blobs_dir):
    blobs = Blobs.from_dir(blobs_dir)
    r1 = build_eif_from_docker(app_image, blobs, tmp_path / "engine.eif", client=docker_client)
    r2 = build_eif_from_archive(_save(docker_client, app_image, tmp_path / "img.tar"), blobs, tmp_path / "archive.eif")
    assert r1.measurements == r2.measurements
    o = eif_oracle.parse_eif((tmp_path / "engine.eif").read_bytes())
    assert o["header"]["crc_ok"]
    assert o["pcrs"] == {"PCR0": r1.measurements.pcr0, "PCR1": r1.measurements.pcr1, "PCR2": r1.measurements.pcr2}
    import json

    md = json.loads(o["sections"][2]["data"])
    assert md["ImageName"] == app_image.split(":")[0]
    assert md["DockerInfo"]["Id"] == docker_client.images.get(app_image).id


def test_cli_build_from_engine(docker_client, app_image, tmp_path, blobs_dir, capsys):
    out = tmp_path / "cli.eif"
    assert main(["build", "--docker-uri", app_image, "--blobs", str(blobs_dir), "--output-file", str(out)]) == 0
    import json

    printed = json.loads(capsys.readouterr().out)
    assert printed["Measurements"]["PCR0"] == eif_oracle.parse_eif(out.read_bytes())["pcrs"]["PCR0"]


def test_engine_applies_layers_like_the_archive_reader(docker_client, tmp_path):
    """A hand-made ``docker save`` archive with a whiteout, an opaque directory, a hard link and a
    non-root directory, loaded into the engine: its export must match our own layer merge."""
    tag = f"eif-test-layers-{uuid.uuid4().hex[:8]}:1"
    archive = docker_save_archive(tmp_path / "layers.tar", app_layers(), APP_CONFIG, tag=tag)
    docker_client.images.load(archive.read_bytes())
    try:
        via_engine = io.BytesIO()
        write_customer_ramdisk(DockerImageSource(tag, client=docker_client), via_engine)
        via_archive = io.BytesIO()
        with ArchiveImageSource(str(archive)) as src:
            write_customer_ramdisk(src, via_archive)
        ea, eb = eif_oracle.parse_cpio(via_engine.getvalue()), eif_oracle.parse_cpio(via_archive.getvalue())
        assert [(e["name"], e["mode"], e["uid"], e["gid"], e["mtime"], e["data"]) for e in ea] == [
            (e["name"], e["mode"], e["uid"], e["gid"], e["mtime"], e["data"]) for e in eb]
        assert via_engine.getvalue() == via_archive.getvalue()
        names = {e["name"] for e in ea}
        assert "rootfs/etc/old.conf" not in names and "rootfs/var/cache/x" not in names
    finally:
        docker_client.images.remove(tag, force=True)


def test_missing_image_is_a_typed_error(docker_client):
    from enclave_build import errors

    with pytest.raises(errors.ImageSourceError) as ei:
        DockerImageSource(f"eif-test-absent-{uuid.uuid4().hex[:8]}:1", client=docker_client)
    assert ei.value.code is errors.ErrorCode.DOCKER
