"""Where the customer ramdisk's files come from (docs/spec/09-eif.md §9.5.3).

Two sources produce the same :class:`~enclave_build.ramdisk.TarEntry` stream, the one linuxkit
reads from ``docker export`` of a container created from the image:

* :class:`DockerImageSource` asks a Docker engine (the ``docker`` SDK): create, export, remove;
* :class:`ArchiveImageSource` reads a ``docker save`` or OCI image-layout tar with no engine: it
  applies the layers (OCI whiteouts included), adds what Docker's init layer adds, and walks the
  result in ``docker export`` order (lexical, directories before their contents).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import io
import json
import math
import posixpath
import shutil
import tarfile
import tempfile
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from . import errors
from .errors import ErrorCode
from .metadata import loads_bounded
from .ramdisk import BLK, CHR, DIR, FIFO, LNK, REG, SYM, TarEntry

_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageConfig:
    """What the build needs from an image's configuration."""

    image_id: str  # "sha256:<hex>" of the config blob, as Docker reports it
    architecture: str
    cmd: list[str] | None
    entrypoint: list[str] | None
    env: list[str]
    inspect: dict[str, Any]  # ``docker inspect``-shaped data for the DockerInfo metadata

    def cmd_and_env(self) -> tuple[list[str], list[str]]:
        """nitro-cli's rule: ``Cmd`` if present, else ``Entrypoint``; never both (§9.5.3)."""
        if self.cmd is not None:
            return list(self.cmd), list(self.env)
        if self.entrypoint is not None:
            return list(self.entrypoint), list(self.env)
        raise errors.ImageSourceError("image has neither Cmd nor Entrypoint", code=ErrorCode.IMAGE_CONFIG)


def _config_from_inspect(attrs: dict[str, Any]) -> ImageConfig:
    cfg = attrs.get("Config") or {}
    return ImageConfig(
        image_id=attrs.get("Id", ""),
        architecture=attrs.get("Architecture", ""),
        cmd=cfg.get("Cmd"),
        entrypoint=cfg.get("Entrypoint"),
        env=list(cfg.get("Env") or []),
        inspect=attrs,
    )


# --- tar members with Go's view of names -------------------------------------------------------


class _RawTarInfo(tarfile.TarInfo):
    """tarfile strips the trailing ``/`` of directory names; Go's archive/tar (and so linuxkit)
    keeps it. Remember the raw ustar name so the slash can be restored."""

    @classmethod
    def frombuf(cls, buf, encoding, errors_):  # type: ignore[override]
        obj = super().frombuf(buf, encoding, errors_)
        name = tarfile.nts(buf[0:100], encoding, errors_)
        prefix = tarfile.nts(buf[345:500], encoding, errors_) if buf[257:265] == tarfile.POSIX_MAGIC else ""
        obj._raw_name = f"{prefix}/{name}" if prefix and obj.type not in tarfile.GNU_TYPES else name
        return obj


def raw_name(ti: tarfile.TarInfo) -> str:
    if "path" in ti.pax_headers:
        return ti.pax_headers["path"]
    raw = getattr(ti, "_raw_name", None)
    if raw is not None and raw.rstrip("/") == ti.name:
        return raw
    return ti.name + "/" if ti.isdir() else ti.name


_TYPE = {
    tarfile.REGTYPE: REG,
    tarfile.AREGTYPE: REG,
    tarfile.LNKTYPE: LNK,
    tarfile.SYMTYPE: SYM,
    tarfile.CHRTYPE: CHR,
    tarfile.BLKTYPE: BLK,
    tarfile.DIRTYPE: DIR,
    tarfile.FIFOTYPE: FIFO,
}


def _entry_type(ti: tarfile.TarInfo) -> str:
    try:
        return _TYPE[ti.type]
    except KeyError:
        raise errors.RamdiskError(
            f"tar entry {ti.name!r} has unsupported type {ti.type!r}", code=ErrorCode.UNSUPPORTED_TAR_ENTRY
        ) from None


def _chunks(fp: BinaryIO | None) -> Iterator[bytes]:
    if fp is None:
        return
    while True:
        b = fp.read(_CHUNK)
        if not b:
            return
        yield b


def _to_entry(ti: tarfile.TarInfo, name: str, read: Callable[[], Iterable[bytes]] | None) -> TarEntry:
    return TarEntry(
        name=name,
        type=_entry_type(ti),
        mode=ti.mode,
        uid=ti.uid,
        gid=ti.gid,
        mtime=math.floor(ti.mtime),
        size=ti.size if ti.type not in (tarfile.SYMTYPE, tarfile.LNKTYPE) else 0,
        linkname=ti.linkname,
        devmajor=ti.devmajor,
        devminor=ti.devminor,
        read=read,
    )


def tar_stream_entries(fp: BinaryIO) -> Iterator[TarEntry]:
    """Entries of a tar stream in order (``docker export`` output); data readable while current."""
    with tarfile.open(fileobj=fp, mode="r|", tarinfo=_RawTarInfo) as tf:
        for ti in tf:
            read = (lambda ti=ti: _chunks(tf.extractfile(ti))) if ti.isreg() else None
            yield _to_entry(ti, raw_name(ti), read)


class _GenReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (the Docker SDK's export stream)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


# --- Docker engine -----------------------------------------------------------------------------


class DockerImageSource:
    """An image in a Docker engine, read through the Docker SDK (``docker`` package)."""

    def __init__(self, reference: str, client: Any = None) -> None:
        try:
            import docker
        except ImportError:  # pragma: no cover - the docker extra is not installed
            raise errors.ImageSourceError("the 'docker' package is needed", code=ErrorCode.DOCKER) from None
        self.reference = reference
        self._docker = docker
        try:
            self._client = client or docker.from_env()
            self._image = self._client.images.get(reference)
        except docker.errors.DockerException as e:
            raise errors.ImageSourceError(f"docker: {e}", code=ErrorCode.DOCKER) from None
        self.config = _config_from_inspect(self._image.attrs)

    @contextlib.contextmanager
    def entries(self) -> Iterator[Iterator[TarEntry]]:
        """``docker create`` + ``docker export`` (what linuxkit --docker does), removed after use."""
        try:
            # A container needs a command to be created; it is never started.
            cmd = None if (self.config.cmd or self.config.entrypoint) else ["/"]
            container = self._client.containers.create(self._image.id, command=cmd)
        except self._docker.errors.DockerException as e:
            raise errors.ImageSourceError(f"docker create: {e}", code=ErrorCode.DOCKER) from None
        try:
            stream = io.BufferedReader(_GenReader(container.export(chunk_size=_CHUNK)), _CHUNK)
            yield tar_stream_entries(stream)
        finally:
            with contextlib.suppress(Exception):
                container.remove(force=True)


# --- docker save / OCI layout archives ---------------------------------------------------------


@dataclasses.dataclass
class _Node:
    entry: TarEntry  # metadata, name without trailing slash
    layer: int
    member: tarfile.TarInfo | None
    inode: int  # hard-link group id
    is_dir: bool


# Docker's init layer (moby daemon/initlayer/setup_unix.go): what every container's root adds.
_INIT_LAYER = [
    ("dev/pts", "dir"),
    ("dev/shm", "dir"),
    ("proc", "dir"),
    ("sys", "dir"),
    (".dockerenv", "file"),
    ("etc/resolv.conf", "file"),
    ("etc/hosts", "file"),
    ("etc/hostname", "file"),
    ("dev/console", "file"),
    ("etc/mtab", "/proc/mounts"),
]


def _norm(name: str) -> str:
    n = posixpath.normpath("/" + name).lstrip("/")
    return "" if n == "." else n


class ArchiveImageSource:
    """A ``docker save`` (manifest.json) or OCI image-layout (index.json) tar, read with no engine."""

    def __init__(self, path: str, *, architecture: str | None = None) -> None:
        self.path = path
        self.reference = path
        self._arch = architecture
        try:
            self._outer = tarfile.open(path, mode="r:")
        except (OSError, tarfile.TarError) as e:
            raise errors.ImageSourceError(f"not a tar archive: {e}") from None
        try:
            self._load()
        except BaseException:
            self._outer.close()
            raise

    def _load(self) -> None:
        self._names = {_norm(m.name): m for m in self._outer.getmembers()}
        config_path, self._layer_paths, repo_tags = self._manifest()
        if repo_tags:
            # Named like the image it holds, so the default ImageName matches nitro-cli's.
            self.reference = repo_tags[0]
        config_raw = self._read(config_path)
        try:
            cfg = loads_bounded(config_raw, "image config")
        except ValueError as e:
            raise errors.ImageSourceError(f"image config is not JSON: {e}", code=ErrorCode.IMAGE_CONFIG) from None
        c = cfg.get("config") or {}
        image_id = "sha256:" + hashlib.sha256(config_raw).hexdigest()
        inspect = {
            "Id": image_id,
            "RepoTags": repo_tags,
            "Architecture": cfg.get("architecture", ""),
            "Os": cfg.get("os", ""),
            "Created": cfg.get("created", ""),
            "Config": c,
            "RootFS": cfg.get("rootfs", {}),
        }
        self.config = ImageConfig(
            image_id=image_id,
            architecture=cfg.get("architecture", ""),
            cmd=c.get("Cmd"),
            entrypoint=c.get("Entrypoint"),
            env=list(c.get("Env") or []),
            inspect=inspect,
        )

    def close(self) -> None:
        self._outer.close()

    def __enter__(self) -> "ArchiveImageSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, name: str) -> bytes:
        m = self._names.get(_norm(name))
        if m is None or not m.isfile():
            raise errors.ImageSourceError(f"archive member missing: {name}")
        f = self._outer.extractfile(m)
        assert f is not None
        return f.read()

    def _json(self, name: str) -> Any:
        try:
            return loads_bounded(self._read(name), name)
        except ValueError as e:
            raise errors.ImageSourceError(f"{name} is not JSON: {e}") from None

    def _manifest(self) -> tuple[str, list[str], list[str]]:
        if "manifest.json" in self._names:
            man = self._json("manifest.json")
            if not isinstance(man, list) or not man:
                raise errors.ImageSourceError("manifest.json is empty")
            entry = man[0]
            return entry["Config"], list(entry["Layers"]), list(entry.get("RepoTags") or [])
        if "index.json" in self._names:
            desc = self._pick(self._json("index.json"))
            while desc.get("mediaType", "").endswith(("image.index.v1+json", "manifest.list.v2+json")):
                desc = self._pick(self._json(self._blob(desc["digest"])))
            man = self._json(self._blob(desc["digest"]))
            tags = [v for k, v in (desc.get("annotations") or {}).items() if k == "org.opencontainers.image.ref.name"]
            return self._blob(man["config"]["digest"]), [self._blob(l["digest"]) for l in man["layers"]], tags
        raise errors.ImageSourceError("neither manifest.json nor index.json in the archive")

    def _pick(self, index: dict[str, Any]) -> dict[str, Any]:
        mans = index.get("manifests") or []
        if not mans:
            raise errors.ImageSourceError("index has no manifests")
        if self._arch:
            for m in mans:
                if (m.get("platform") or {}).get("architecture") == self._arch:
                    return m
        return mans[0]

    @staticmethod
    def _blob(digest: str) -> str:
        algo, _, hexd = digest.partition(":")
        return f"blobs/{algo}/{hexd}"

    @contextlib.contextmanager
    def _layers(self) -> Iterator[list[tarfile.TarFile]]:
        with contextlib.ExitStack() as stack:
            tars = []
            for lp in self._layer_paths:
                m = self._names.get(_norm(lp))
                if m is None:
                    raise errors.ImageSourceError(f"layer missing: {lp}")
                f = self._outer.extractfile(m)
                assert f is not None
                head = f.read(2)
                f.seek(0)
                if head == b"\x1f\x8b":
                    # Compressed layers are inflated once to a temporary file for random access.
                    tmp = stack.enter_context(tempfile.TemporaryFile())
                    with gzip.GzipFile(fileobj=f) as gz:
                        shutil.copyfileobj(gz, tmp, _CHUNK)
                    tmp.seek(0)
                    f = tmp
                try:
                    tars.append(stack.enter_context(tarfile.open(fileobj=f, mode="r:", tarinfo=_RawTarInfo)))
                except tarfile.TarError as e:
                    raise errors.ImageSourceError(f"layer {lp} is not a tar: {e}") from None
            yield tars

    def _merge(self, layers: list[tarfile.TarFile]) -> dict[str, _Node]:
        tree: dict[str, _Node] = {}
        counter = iter(range(1, 1 << 62))

        def remove_subtree(path: str, keep_self: bool = False) -> None:
            pre = path + "/" if path else ""
            for k in [k for k in tree if k.startswith(pre) or (k == path and not keep_self)]:
                del tree[k]

        for li, tf in enumerate(layers):
            for ti in tf:
                path = _norm(ti.name)
                if not path:
                    continue
                base = posixpath.basename(path)
                parent = posixpath.dirname(path)
                if base == ".wh..wh..opq":
                    remove_subtree(parent, keep_self=True)
                    continue
                if base.startswith(".wh."):
                    remove_subtree(posixpath.join(parent, base[4:]))
                    continue
                old = tree.get(path)
                if old is not None and (not old.is_dir or not ti.isdir()):
                    remove_subtree(path)
                if ti.islnk():
                    target = tree.get(_norm(ti.linkname))
                    if target is None or target.is_dir:
                        raise errors.ImageSourceError(f"hard link {ti.name!r} to missing {ti.linkname!r}")
                    tree[path] = dataclasses.replace(target, entry=dataclasses.replace(target.entry, name=path))
                    continue
                entry = _to_entry(ti, path, None)
                tree[path] = _Node(entry, li, ti if ti.isreg() else None, next(counter), ti.isdir())
        return tree

    def _init_layer(self, tree: dict[str, _Node]) -> None:
        counter = iter(range(1 << 62, 1 << 63))
        for path, typ in _INIT_LAYER:
            parts = path.split("/")
            for i in range(1, len(parts) + 1):
                p = "/".join(parts[:i])
                if p in tree and not tree[p].is_dir:
                    del tree[p]  # unlink(2) succeeds on anything but a directory
            if path in tree:
                continue
            for i in range(1, len(parts)):
                p = "/".join(parts[:i])
                if p not in tree:
                    tree[p] = _Node(TarEntry(name=p, type=DIR, mode=0o40755), -1, None, next(counter), True)
            if typ == "dir":
                node = _Node(TarEntry(name=path, type=DIR, mode=0o40755), -1, None, next(counter), True)
            elif typ == "file":
                node = _Node(TarEntry(name=path, type=REG, mode=0o100755), -1, None, next(counter), False)
            else:
                node = _Node(TarEntry(name=path, type=SYM, mode=0o120777, linkname=typ), -1, None, next(counter), False)
            tree[path] = node

    @contextlib.contextmanager
    def entries(self) -> Iterator[Iterator[TarEntry]]:
        with self._layers() as layers:
            tree = self._merge(layers)
            self._init_layer(tree)
            yield self._walk(tree, layers)

    def _walk(self, tree: dict[str, _Node], layers: list[tarfile.TarFile]) -> Iterator[TarEntry]:
        first_name: dict[int, str] = {}
        for path in sorted(tree, key=lambda p: p.encode("utf-8", "surrogateescape").split(b"/")):
            node = tree[path]
            e = node.entry
            if node.is_dir:
                yield dataclasses.replace(e, name=path + "/")
                continue
            if e.type == REG:
                if node.inode in first_name:
                    yield dataclasses.replace(e, name=path, type=LNK, size=0, linkname=first_name[node.inode], read=None)
                    continue
                first_name[node.inode] = path
                if node.member is not None:
                    tf, member = layers[node.layer], node.member
                    yield dataclasses.replace(e, name=path, read=lambda tf=tf, m=member: _chunks(tf.extractfile(m)))
                    continue
            yield dataclasses.replace(e, name=path)
