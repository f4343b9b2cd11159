"""The two ramdisks, built as linuxkit builds them for nitro-cli (docs/spec/09-eif.md §9.5).

"linuxkit" here is v1.5.2 with the three patches nitro-cli's binary is built with
(aws/aws-nitro-enclaves-sdk-bootstrap, ``linuxkit/*.patch``): a ``prefix`` for init images,
the uncompressed ``kernel+initrd-nogz`` output, and no duplicate entries for replaced files.

linuxkit turns a YAML description into a tar stream (init image contents, then ``files``) and then
that tar stream into cpio (``initrd.CopySplitTar``). This module reproduces both steps on a stream of
:class:`TarEntry` values, so a ramdisk is written with constant memory whatever the image size.
"""

from __future__ import annotations

import dataclasses
import posixpath
from typing import BinaryIO, Callable, Iterable, Iterator

from . import cpio, errors
from .errors import ErrorCode

# linuxkit's defaultModTime, 2017-04-18 16:30:00 UTC (moby/build/dir.go).
DEFAULT_MTIME = 1492533000
RESOLVCONF_SYMLINK = "/run/resolvconf/resolv.conf"
CUSTOMER_PREFIX = "rootfs/"
_CHUNK = 1 << 20

# tar type flags
REG, LNK, SYM, CHR, BLK, DIR, FIFO = "0", "1", "2", "3", "4", "5", "6"


@dataclasses.dataclass(kw_only=True)
class TarEntry:
    """One tar header as Go's archive/tar presents it: ``name`` is raw (directories keep their
    trailing ``/``), ``mode`` is the raw mode field, ``mtime`` whole seconds.

    ``read`` returns the entry's data as chunks; it is valid only while the entry is current
    (like a tar reader positioned on it)."""

    name: str
    type: str
    mode: int
    uid: int = 0
    gid: int = 0
    mtime: int = DEFAULT_MTIME
    size: int = 0
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    read: Callable[[], Iterable[bytes]] | None = None

    def chunks(self) -> Iterable[bytes]:
        return self.read() if self.read is not None else ()


def bytes_reader(data: bytes) -> Callable[[], Iterable[bytes]]:
    return lambda: (data,) if data else ()


def file_reader(fp: BinaryIO) -> Callable[[], Iterator[bytes]]:
    def gen() -> Iterator[bytes]:
        while True:
            b = fp.read(_CHUNK)
            if not b:
                return
            yield b

    return gen


# --- linuxkit moby/build/image.go: ImageTar --------------------------------------------------

_EXCLUDE = {".dockerenv", "Dockerfile", "dev/console", "dev/pts", "dev/shm", "etc/hostname"}
_REPLACE = {
    "etc/hosts": (
        "127.0.0.1       localhost\n"
        "::1     localhost ip6-localhost ip6-loopback\n"
        "fe00::0 ip6-localnet\n"
        "ff00::0 ip6-mcastprefix\n"
        "ff02::1 ip6-allnodes\n"
        "ff02::2 ip6-allrouters\n"
    ),
    "etc/resolv.conf": "\n# no resolv.conf configured\n",
}


def _touch_entries() -> dict[str, TarEntry]:
    d = lambda n: TarEntry(name=n, type=DIR, mode=0o755)  # noqa: E731
    return {
        "dev/": d("dev"),
        "dev/pts/": d("dev/pts"),
        "dev/shm/": d("dev/shm"),
        "etc/": d("etc"),
        "etc/mtab": TarEntry(name="etc/mtab", type=SYM, mode=0o755, linkname="/proc/mounts"),
        "etc/resolv.conf": TarEntry(name="etc/resolv.conf", type=REG, mode=0o644),
        "etc/hosts": TarEntry(name="etc/hosts", type=REG, mode=0o644),
        "proc/": d("proc"),
        "sys/": d("sys"),
    }


def _prefix_dirs(prefix: str) -> Iterator[TarEntry]:
    """tarPrefix: one 0755 directory per component of the prefix, no trailing slash."""
    if not prefix:
        return
    if not prefix.endswith("/") or prefix.startswith("/"):
        raise errors.RamdiskError("prefix must be relative and end with /", code=ErrorCode.CPIO, actual=prefix)
    acc = ""
    for comp in prefix[:-1].split("/"):
        acc += comp
        yield TarEntry(name=acc, type=DIR, mode=0o755)
        acc += "/"


def linuxkit_image_entries(
    image: Iterable[TarEntry], *, prefix: str = CUSTOMER_PREFIX, resolv: str = RESOLVCONF_SYMLINK
) -> Iterator[TarEntry]:
    """An init image's filesystem (a ``docker export`` stream) as linuxkit's ImageTar emits it."""
    yield from _prefix_dirs(prefix)
    touch = _touch_entries()
    found: set[str] = set()
    for e in image:
        if e.name in _EXCLUDE:
            continue
        if e.name in _REPLACE:
            # A replaced entry keeps its header but not its data. It counts as found, so the touch
            # pass does not add it again: nitro-cli's linuxkit carries the patch "Fix output image
            # duplicate entries" (upstream v1.5.2 without it writes such entries twice).
            if e.name in touch:
                found.add(e.name)
            if e.name != "etc/resolv.conf" or not resolv:
                contents = _REPLACE[e.name].encode()
                yield dataclasses.replace(
                    e, name=prefix + e.name, size=len(contents), mtime=DEFAULT_MTIME, read=bytes_reader(contents)
                )
            else:
                yield dataclasses.replace(
                    e, name=prefix + e.name, size=0, type=SYM, linkname=resolv, mtime=DEFAULT_MTIME, read=None
                )
            continue
        if e.name in touch:
            e = dataclasses.replace(e, mtime=DEFAULT_MTIME)
            found.add(e.name)
        linkname = prefix + e.linkname if e.type == LNK else e.linkname
        yield dataclasses.replace(e, name=prefix + e.name, linkname=linkname)
    for key in sorted(touch):
        if key in found:
            continue
        t = touch[key]
        orig = t.name
        contents = _REPLACE.get(orig, "")
        if contents and (orig != "etc/resolv.conf" or not resolv):
            data = contents.encode()
            yield dataclasses.replace(t, name=prefix + orig, size=len(data), read=bytes_reader(data))
        elif orig == "etc/resolv.conf" and resolv:
            yield dataclasses.replace(t, name=prefix + orig, size=0, type=SYM, linkname=resolv)
        else:
            yield dataclasses.replace(t, name=prefix + orig)


# --- linuxkit moby/build/build.go: filesystem() for the YAML ``files`` list --------------------


@dataclasses.dataclass(frozen=True)
class FileSpec:
    path: str
    mode: int
    directory: bool = False
    contents: bytes | None = None
    read: Callable[[], Iterable[bytes]] | None = None
    size: int = 0


def linuxkit_files_entries(files: Iterable[FileSpec]) -> Iterator[TarEntry]:
    added: set[str] = set()
    for f in files:
        path = f.path[1:] if f.path.startswith("/") else f.path  # Go strips one leading "/"
        dir_mode = f.mode
        for bits, x in ((0o700, 0o100), (0o070, 0o010), (0o007, 0o001)):
            if dir_mode & bits:
                dir_mode |= x
        root = ""
        for part in posixpath.dirname(path).split("/"):
            if part in (".", "/", ""):
                continue
            root = part if not root else root + "/" + part
            if root not in added:
                yield TarEntry(name=root, type=DIR, mode=dir_mode)
                added.add(root)
        added.add(path)
        if f.directory:
            yield TarEntry(name=path, type=DIR, mode=f.mode)
        elif f.contents is not None:
            yield TarEntry(name=path, type=REG, mode=f.mode, size=len(f.contents), read=bytes_reader(f.contents))
        else:
            yield TarEntry(name=path, type=REG, mode=f.mode, size=f.size, read=f.read)


# --- linuxkit initrd/initrd.go: tar stream -> cpio --------------------------------------------

_TYPES = {
    REG: cpio.TYPE_REG,
    SYM: cpio.TYPE_SYMLINK,
    CHR: cpio.TYPE_CHAR,
    BLK: cpio.TYPE_BLK,
    DIR: cpio.TYPE_DIR,
    FIFO: cpio.TYPE_FIFO,
}


def _go_rel(base: str, target: str) -> str:
    """Go's filepath.Rel for two relative paths."""
    return posixpath.relpath(posixpath.normpath(target), posixpath.normpath(base) if base else ".")


def initrd_chunks(entries: Iterable[TarEntry]) -> Iterator[bytes]:
    """Uncompressed initrd (nitro-cli's ``kernel+initrd-nogz``): cpio of the entries, ``boot/`` skipped."""
    w = cpio.CpioWriter()
    for e in entries:
        if e.name.startswith("boot/"):
            # CopySplitTar keeps boot/kernel, boot/cmdline and boot/ucode.cpio out of the initrd
            # and skips the rest of boot/.
            continue
        linkname = e.linkname
        if e.type == LNK:
            # Hard links become relative symlinks (initrd.go typeconv).
            try:
                linkname = _go_rel(posixpath.dirname(e.name), linkname)
            except ValueError:
                linkname = "/" + linkname
            ftype = cpio.TYPE_SYMLINK
        else:
            try:
                ftype = _TYPES[e.type]
            except KeyError:
                raise errors.RamdiskError(
                    f"cannot convert tar entry {e.name!r} of type {e.type!r}", code=ErrorCode.UNSUPPORTED_TAR_ENTRY
                ) from None
        size = len(linkname.encode("utf-8", "surrogateescape")) if ftype == cpio.TYPE_SYMLINK else e.size
        yield w.header(
            name=e.name,
            ftype=ftype,
            mode=e.mode,
            uid=e.uid,
            gid=e.gid,
            mtime=e.mtime,
            size=size,
            rdevmajor=e.devmajor,
            rdevminor=e.devminor,
        )
        if ftype == cpio.TYPE_SYMLINK:
            yield w.data(linkname.encode("utf-8", "surrogateescape"))
        elif ftype == cpio.TYPE_REG:
            for chunk in e.chunks():
                out = w.data(chunk)
                if len(out):
                    yield out
    yield w.close()


def write_initrd(entries: Iterable[TarEntry], out: BinaryIO) -> int:
    n = 0
    for chunk in initrd_chunks(entries):
        out.write(chunk)
        n += len(chunk)
    return n


# --- the two nitro-cli ramdisks (enclave_build/src/yaml_generator.rs) --------------------------


def bootstrap_entries(init: FileSpec | bytes, nsm_ko: FileSpec | bytes,
                      modules: Iterable[FileSpec] = ()) -> Iterator[TarEntry]:
    """``files: [dev/ 0755, init 0755, nsm.ko 0755]``, then (local flavour only, §9.11) the
    directory ``modules/`` and each extra module in it; nitro-cli's ramdisk 0 has no modules."""
    def spec(path: str, v: FileSpec | bytes) -> FileSpec:
        return v if isinstance(v, FileSpec) else FileSpec(path, 0o755, contents=v)

    files = [FileSpec("dev", 0o755, directory=True), spec("init", init), spec("nsm.ko", nsm_ko)]
    extra = list(modules)
    if extra:
        files.append(FileSpec("modules", 0o755, directory=True))
        files.extend(extra)
    return linuxkit_files_entries(files)


def config_lines(values: Iterable[str]) -> bytes:
    """nitro-cli's ``write_config``: one line per value, each ending in a newline."""
    return "".join(f"{v}\n" for v in values).encode("utf-8")


def customer_entries(image: Iterable[TarEntry], *, cmd: list[str], env: list[str]) -> Iterator[TarEntry]:
    """``prefix: rootfs/``, ``init: [image]``, then the fixed directories and ``cmd``/``env``."""
    yield from linuxkit_image_entries(image, prefix=CUSTOMER_PREFIX, resolv=RESOLVCONF_SYMLINK)
    files = [FileSpec(f"rootfs/{d}", 0o755, directory=True) for d in ("dev", "run", "sys", "var", "proc", "tmp")]
    files.append(FileSpec("cmd", 0o644, contents=config_lines(cmd)))
    files.append(FileSpec("env", 0o644, contents=config_lines(env)))
    yield from linuxkit_files_entries(files)
