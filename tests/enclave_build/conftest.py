"""Fixtures for the EIF build tests: synthetic blobs, a test PKI, tiny image archives, Docker."""

from __future__ import annotations

import datetime as dt
import io
import json
import tarfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

X86_CMDLINE = (
    b"reboot=k panic=30 pci=off nomodules console=ttyS0 i8042.noaux i8042.nomux "
    b"i8042.nopnp i8042.dumbkbd random.trust_cpu=on"
)


@pytest.fixture
def blobs_dir(tmp_path: Path) -> Path:
    """Small synthetic blobs with nitro-cli's file names (the real kernel is not available)."""
    d = tmp_path / "blobs"
    d.mkdir()
    (d / "bzImage").write_bytes(b"MZ-synthetic-kernel" + bytes(range(256)) * 4)
    (d / "bzImage.config").write_text("#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86_64 4.14.256-209.484.amzn2.x86_64 Kernel Configuration\n#\n")
    (d / "cmdline").write_bytes(X86_CMDLINE + b"\n")
    (d / "init").write_bytes(b"\x7fELF-synthetic-init" * 37)
    (d / "nsm.ko").write_bytes(b"\x7fELF-synthetic-nsm" * 11)
    return d


def make_cert(curve: ec.EllipticCurve = ec.SECP384R1(), cn: str = "eif-test") -> tuple[bytes, bytes]:
    key = ec.generate_private_key(curve)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA384())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


@pytest.fixture(scope="session")
def p384_identity() -> tuple[bytes, bytes]:
    return make_cert()


def _add(tf: tarfile.TarFile, name: str, *, data: bytes | None = None, type_=tarfile.REGTYPE, mode=0o644, mtime=1600000000, linkname="", uid=0, gid=0) -> None:
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.mode = mode
    ti.mtime = mtime
    ti.uid, ti.gid = uid, gid
    ti.linkname = linkname
    ti.size = len(data) if data is not None else 0
    tf.addfile(ti, io.BytesIO(data) if data is not None else None)


def layer_tar(entries: list[dict]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for e in entries:
            _add(tf, **e)
    return buf.getvalue()


def docker_save_archive(path: Path, layers: list[bytes], config: dict, tag: str = "app:1") -> Path:
    """A legacy ``docker save`` layout: manifest.json + <id>.json + <n>/layer.tar."""
    import hashlib

    config = dict(config, rootfs={"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]})
    cfg = json.dumps(config).encode()
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    with tarfile.open(path, "w") as tf:
        names = []
        for i, layer in enumerate(layers):
            n = f"l{i}/layer.tar"
            ti = tarfile.TarInfo(n)
            ti.size = len(layer)
            tf.addfile(ti, io.BytesIO(layer))
            names.append(n)
        ti = tarfile.TarInfo(cfg_name)
        ti.size = len(cfg)
        tf.addfile(ti, io.BytesIO(cfg))
        man = json.dumps([{"Config": cfg_name, "RepoTags": [tag], "Layers": names}]).encode()
        ti = tarfile.TarInfo("manifest.json")
        ti.size = len(man)
        tf.addfile(ti, io.BytesIO(man))
    return path


def oci_archive(path: Path, layers: list[bytes], config: dict, *, gzip_layers: bool = True) -> Path:
    """An OCI image layout tar (index.json -> manifest -> config + layers), layers gzipped."""
    import gzip
    import hashlib

    blobs: dict[str, bytes] = {}

    def put(data: bytes) -> str:
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return d

    config = dict(config, rootfs={"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]})
    cfg = json.dumps(config).encode()
    layer_descs = []
    for layer in layers:
        data = gzip.compress(layer, mtime=0) if gzip_layers else layer
        mt = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzip_layers else "")
        layer_descs.append({"mediaType": mt, "digest": put(data), "size": len(data)})
    man = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(cfg), "size": len(cfg)},
        "layers": layer_descs,
    }).encode()
    md = put(man)
    index = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": len(man)}]}).encode()
    with tarfile.open(path, "w") as tf:
        for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)] + [
            (f"blobs/sha256/{d.split(':')[1]}", b) for d, b in blobs.items()
        ]:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return path


APP_CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "config": {"Cmd": ["/bin/hello.sh"], "Env": ["PATH=/usr/bin:/bin", "HELLO=Hello from the enclave side!"]},
    "rootfs": {"type": "layers", "diff_ids": []},
}


def app_layers() -> list[bytes]:
    base = layer_tar([
        {"name": "bin", "type_": tarfile.DIRTYPE, "mode": 0o755},
        {"name": "bin/busybox", "data": b"\x7fELF-bb" * 100, "mode": 0o755},
        {"name": "bin/sh", "type_": tarfile.LNKTYPE, "linkname": "bin/busybox", "mode": 0o755},
        {"name": "bin/ls", "type_": tarfile.SYMTYPE, "linkname": "busybox", "mode": 0o777},
        {"name": "etc", "type_": tarfile.DIRTYPE, "mode": 0o755},
        {"name": "etc/hosts", "data": b"127.0.0.1 base\n"},
        {"name": "etc/old.conf", "data": b"old\n"},
        {"name": "var", "type_": tarfile.DIRTYPE, "mode": 0o755},
        {"name": "var/cache", "type_": tarfile.DIRTYPE, "mode": 0o755},
        {"name": "var/cache/x", "data": b"cached"},
    ])
    top = layer_tar([
        {"name": "bin", "type_": tarfile.DIRTYPE, "mode": 0o755, "mtime": 1700000000},
        {"name": "bin/hello.sh", "data": b"#!/bin/sh\necho hello\n", "mode": 0o755, "mtime": 1700000000},
        {"name": "etc", "type_": tarfile.DIRTYPE, "mode": 0o755},
        {"name": "etc/.wh.old.conf"},
        # layers made by Docker carry the header of every directory whose content they change
        {"name": "var", "type_": tarfile.DIRTYPE, "mode": 0o755, "mtime": 1700000000},
        {"name": "var/cache", "type_": tarfile.DIRTYPE, "mode": 0o755, "mtime": 1700000000},
        {"name": "var/cache/.wh..wh..opq"},
        {"name": "home", "type_": tarfile.DIRTYPE, "mode": 0o700, "uid": 1000, "gid": 1000},
        {"name": "home/user-file", "data": b"u", "uid": 1000, "gid": 1000, "mode": 0o600},
    ])
    return [base, top]


def write_parts(tmp_path: Path, kernel: bytes, ramdisks: list[bytes]):
    from enclave_build.build import Part

    kp = tmp_path / "kernel.bin"
    kp.write_bytes(kernel)
    parts = []
    for i, rd in enumerate(ramdisks):
        p = tmp_path / f"rd{i}.img"
        p.write_bytes(rd)
        parts.append(Part(p))
    return Part(kp), parts


SMALL_METADATA = json.dumps({
    "ImageName": "app",
    "ImageVersion": "1",
    "BuildMetadata": {"BuildTime": "2026-11-28T00:00:00+00:00", "BuildTool": "t", "BuildToolVersion": "0", "OperatingSystem": "Linux", "KernelVersion": "4.14"},
    "DockerInfo": {},
    "CustomMetadata": None,
}, separators=(",", ":")).encode()


def make_eif(tmp_path: Path, *, kernel: bytes = b"K" * 1000, cmdline: bytes = X86_CMDLINE,
             ramdisks: tuple[bytes, ...] = (b"R0" * 300, b"R1" * 700), signing_key=None, flags: int = 0,
             metadata_json: bytes = SMALL_METADATA):
    """Write an EIF with the package's writer; return (bytes, measurements)."""
    from enclave_build.build import assemble_eif

    k, rds = write_parts(tmp_path, kernel, list(ramdisks))
    out = tmp_path / "out.eif"
    with open(out, "wb") as f:
        meas, size = assemble_eif(f, kernel=k, cmdline=cmdline, metadata_json=metadata_json, ramdisks=rds, signing_key=signing_key, flags=flags)
    data = out.read_bytes()
    assert len(data) == size
    return data, meas


@pytest.fixture(scope="session")
def wheel_dir(tmp_path_factory) -> Path:
    """The reference image's pinned wheels, downloaded once per session."""
    return tmp_path_factory.mktemp("wheels")


@pytest.fixture(scope="session")
def built_images(docker_client):
    """Image IDs built in this session, removed at the end."""
    ids: list[str] = []
    yield ids
    for image_id in reversed(ids):
        try:
            docker_client.images.remove(image_id, force=True)
        except Exception:
            pass
