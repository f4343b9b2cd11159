"""Putting it together: image + blobs -> ramdisks -> EIF + measurements (§9.1, §9.9).

The functions here are the edge where files are opened; the cores they call work on bytes.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Protocol

from . import eif, errors, metadata, ramdisk
from .blobs import Blobs
from .image import ArchiveImageSource, DockerImageSource, ImageConfig
from .pcr import CHUNK_SIZE, Measurements, Measurer
from .signing import SigningKey

_ARCH_FLAGS = {"amd64": 0, "x86_64": 0, "arm64": eif.FLAG_ARCH_ARM64, "aarch64": eif.FLAG_ARCH_ARM64}


class ImageSource(Protocol):
    reference: str
    config: ImageConfig

    def entries(self): ...  # context manager yielding an iterator of TarEntry


@dataclasses.dataclass(frozen=True)
class Part:
    """A section's data in a file (or a byte range of one), re-readable, streamed in chunks."""

    path: Path
    offset: int = 0
    length: int | None = None

    @property
    def size(self) -> int:
        return self.length if self.length is not None else self.path.stat().st_size - self.offset

    def chunks(self) -> Iterator[memoryview]:
        buf = bytearray(CHUNK_SIZE)
        view = memoryview(buf)
        left = self.size
        with open(self.path, "rb", buffering=0) as f:
            f.seek(self.offset)
            while left:
                n = f.readinto(view[: min(CHUNK_SIZE, left)])
                if not n:
                    raise errors.TruncatedEif(f"{self.path} ended early", expected=self.size, actual=self.size - left)
                left -= n
                yield view[:n]


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildResult:
    measurements: Measurements
    eif_size: int
    image_config: ImageConfig | None = None

    def to_json_obj(self) -> dict[str, Any]:
        """``nitro-cli build-enclave``'s stdout: ``{"Measurements": {...}}``."""
        return {"Measurements": self.measurements.to_json_obj()}


def _measure(kernel: Part, cmdline: bytes, ramdisks: list[Part]) -> Measurer:
    m = Measurer()
    for c in kernel.chunks():
        m.boot(c)
    m.boot(cmdline)
    for i, rd in enumerate(ramdisks):
        for c in rd.chunks():
            m.ramdisk(i, c)
    return m


def assemble_eif(
    out: BinaryIO,
    *,
    kernel: Part,
    cmdline: bytes,
    metadata_json: bytes,
    ramdisks: list[Part],
    signing_key: SigningKey | None = None,
    flags: int = 0,
    default_mem: int = eif.DEFAULT_MEM,
    default_cpus: int = eif.DEFAULT_CPUS,
) -> tuple[Measurements, int]:
    """Write an EIF to a seekable binary output; returns (measurements, size).

    Unsigned: one pass (written and measured together). Signed: PCR0 is needed before the
    signature section's size is known, so the parts are measured first, then written.
    """
    if b"\0" in cmdline:
        raise errors.BadCmdline("NUL byte in the kernel command line")
    signature = None
    pre: Measurer | None = None
    if signing_key is not None:
        pre = _measure(kernel, cmdline, ramdisks)
        pcr0 = bytes.fromhex(pre.result().pcr0)
        signature = signing_key.sign_pcr0(pcr0)
    specs = [
        eif.SectionSpec(eif.SectionType.KERNEL, kernel.size),
        eif.SectionSpec(eif.SectionType.CMDLINE, len(cmdline)),
        eif.SectionSpec(eif.SectionType.METADATA, len(metadata_json)),
        *[eif.SectionSpec(eif.SectionType.RAMDISK, r.size) for r in ramdisks],
    ]
    if signature is not None:
        specs.append(eif.SectionSpec(eif.SectionType.SIGNATURE, len(signature)))
    w = eif.EifWriter(specs, flags=flags, default_mem=default_mem, default_cpus=default_cpus)
    m = Measurer() if pre is None else None
    start = out.tell()
    out.write(w.placeholder_header())
    out.write(w.begin_section())
    for c in kernel.chunks():
        out.write(w.section_data(c))
        if m:
            m.boot(c)
    out.write(w.begin_section())
    out.write(w.section_data(cmdline))
    if m:
        m.boot(cmdline)
    out.write(w.begin_section())
    out.write(w.section_data(metadata_json))
    for i, rd in enumerate(ramdisks):
        out.write(w.begin_section())
        for c in rd.chunks():
            out.write(w.section_data(c))
            if m:
                m.ramdisk(i, c)
    if signature is not None:
        out.write(w.begin_section())
        out.write(w.section_data(signature))
    end = out.tell()
    out.seek(start)
    out.write(w.finish())
    out.seek(end)
    measurer = pre if pre is not None else m
    assert measurer is not None
    if signing_key is not None:
        measurer.certificate(signing_key.certificate_der())
    return measurer.result(), end - start


def write_bootstrap_ramdisk(blobs: Blobs, out: BinaryIO) -> int:
    with open(blobs.init, "rb") as fi, open(blobs.nsm_ko, "rb") as fn:
        init = ramdisk.FileSpec("init", 0o755, read=ramdisk.file_reader(fi), size=os.fstat(fi.fileno()).st_size)
        nsm = ramdisk.FileSpec("nsm.ko", 0o755, read=ramdisk.file_reader(fn), size=os.fstat(fn.fileno()).st_size)
        # Small (tens of KiB each): read whole, so no file stays open past this call.
        modules = [ramdisk.FileSpec(f"modules/{m.name}", 0o755, contents=m.read_bytes()) for m in blobs.modules]
        return ramdisk.write_initrd(ramdisk.bootstrap_entries(init, nsm, modules), out)


def write_customer_ramdisk(source: ImageSource, out: BinaryIO) -> int:
    cmd, env = source.config.cmd_and_env()
    with source.entries() as entries:
        return ramdisk.write_initrd(ramdisk.customer_entries(entries, cmd=cmd, env=env), out)


def build_eif(
    source: ImageSource,
    blobs: Blobs,
    output: str | os.PathLike[str],
    *,
    signing_key: SigningKey | None = None,
    image_name: str | None = None,
    image_version: str | None = None,
    custom_metadata: Any = None,
    build_time: _dt.datetime | None = None,
    workdir: str | os.PathLike[str] | None = None,
) -> BuildResult:
    """Build an EIF from an image source and the blobs, like ``nitro-cli build-enclave``.

    ``build_time`` only changes the (unmeasured) metadata; PCRs depend on the inputs alone.
    """
    cfg = source.config
    try:
        flags = _ARCH_FLAGS[cfg.architecture]
    except KeyError:
        raise errors.ImageSourceError("unsupported image architecture", code=errors.ErrorCode.IMAGE_CONFIG, actual=cfg.architecture) from None
    os_name, kver = metadata.UNKNOWN, metadata.UNKNOWN
    if blobs.kernel_config is not None:
        os_name, kver = metadata.kernel_info_from_config(blobs.kernel_config.read_text(errors="replace"))
    when = build_time or _dt.datetime.now(_dt.timezone.utc)
    ref = source.reference
    md = metadata.encode_metadata(
        image_name=image_name or ref.split(":")[0],
        image_version=image_version or cfg.image_id.removeprefix("sha256:"),
        build_info=metadata.BuildInfo(build_time=metadata.rfc3339(when), operating_system=os_name, kernel_version=kver),
        docker_info=cfg.inspect,
        custom_metadata=custom_metadata,
    )
    with tempfile.TemporaryDirectory(dir=workdir, prefix="eif-build-") as tmp:
        boot = Path(tmp, "bootstrap-initrd.img")
        cust = Path(tmp, "customer-initrd.img")
        with open(boot, "wb") as f:
            write_bootstrap_ramdisk(blobs, f)
        with open(cust, "wb") as f:
            write_customer_ramdisk(source, f)
        with open(output, "wb") as out:
            meas, size = assemble_eif(
                out,
                kernel=Part(blobs.kernel),
                cmdline=blobs.cmdline,
                metadata_json=md,
                ramdisks=[Part(boot), Part(cust)],
                signing_key=signing_key,
                flags=flags,
            )
    return BuildResult(measurements=meas, eif_size=size, image_config=cfg)


def build_eif_from_archive(archive: str | os.PathLike[str], blobs: Blobs, output: str | os.PathLike[str], **kw: Any) -> BuildResult:
    """EIF from a ``docker save`` / OCI-layout tar, no Docker engine needed."""
    with ArchiveImageSource(str(archive)) as source:
        return build_eif(source, blobs, output, **kw)


def build_eif_from_docker(reference: str, blobs: Blobs, output: str | os.PathLike[str], *, client: Any = None, **kw: Any) -> BuildResult:
    """EIF from an image in a Docker engine (``docker`` SDK; ``DOCKER_HOST`` honoured)."""
    return build_eif(DockerImageSource(reference, client=client), blobs, output, **kw)


def sign_eif(source: str | os.PathLike[str], output: str | os.PathLike[str], signing_key: SigningKey) -> Measurements:
    """Sign an existing EIF (replacing any signature), like ``nitro-cli sign-eif``.

    The source is validated first (CRC included); kernel and ramdisks are copied as byte ranges,
    so PCR0-PCR2 are unchanged and PCR8 is added. ``output`` may be ``source``.
    """
    from .describe import inspect_eif

    src = Path(source)
    with open(src, "rb", buffering=0) as f:
        info = inspect_eif(f)
    h = info.header

    def rng(i: int) -> Part:
        return Part(src, h.section_offsets[i] + eif.SECTION_HEADER_SIZE, h.section_sizes[i])

    md_index = info.section_types.index(eif.SectionType.METADATA)
    metadata_json = b"".join(bytes(c) for c in rng(md_index).chunks())
    ramdisks = [rng(i) for i, t in enumerate(info.section_types) if t is eif.SectionType.RAMDISK]
    dst = Path(output)
    with tempfile.NamedTemporaryFile(dir=dst.parent, prefix=dst.name + ".", delete=False) as tmp:
        try:
            meas, _ = assemble_eif(
                tmp,
                kernel=rng(0),
                cmdline=info.cmdline,
                metadata_json=metadata_json,
                ramdisks=ramdisks,
                signing_key=signing_key,
                flags=h.flags,
                default_mem=h.default_mem,
                default_cpus=h.default_cpus,
            )
            tmp.close()
            os.replace(tmp.name, dst)
        except BaseException:
            tmp.close()
            os.unlink(tmp.name)
            raise
    return meas


def write_measurements(path: str | os.PathLike[str], result: BuildResult) -> None:
    """The expected PCRs next to the EIF, for verifiers (EIF.md §6)."""
    Path(path).write_text(json.dumps(result.to_json_obj(), indent=2) + "\n")
