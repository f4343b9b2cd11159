"""cpio "newc" exactly as linuxkit's vendored gocpio writes it (docs/spec/09-eif.md §9.5.1).

Hand-written on purpose: no Python library reproduces gocpio's choices byte for byte (inodes from
721, devmajor/devminor fixed at 3/1, nlink 2 for directories, padding of name and data to 4 bytes
relative to the archive start, the whole archive padded to 512 bytes after ``TRAILER!!!``).

Sans-IO: every method returns the bytes to append; the caller owns the output.
"""

from __future__ import annotations

from . import errors
from .errors import ErrorCode

MAGIC = b"070701"
FIRST_INODE = 721
TRAILER = "TRAILER!!!"

# File types, as in gocpio (the high nibble of the mode).
TYPE_FIFO = 0o01
TYPE_CHAR = 0o02
TYPE_DIR = 0o04
TYPE_BLK = 0o06
TYPE_REG = 0o10
TYPE_SYMLINK = 0o12
TYPE_SOCK = 0o14

_U32 = 0xFFFFFFFF


def _field(value: int, what: str) -> bytes:
    # gocpio formats with %08x; a value that does not fit would widen the field and corrupt the
    # archive, so it is refused here instead.
    if value < 0 or value > _U32:
        raise errors.RamdiskError(f"cpio field {what} out of range", code=ErrorCode.CPIO, actual=value)
    return b"%08x" % value


class CpioWriter:
    def __init__(self) -> None:
        self._inode = FIRST_INODE
        self._length = 0
        self._remaining = 0
        self._closed = False

    @property
    def length(self) -> int:
        return self._length

    def _pad(self, mod: int) -> bytes:
        return bytes((mod - self._length % mod) % mod)

    def _out(self, data: bytes) -> bytes:
        self._length += len(data)
        return data

    def header(
        self,
        *,
        name: str | bytes,
        ftype: int,
        mode: int,
        uid: int = 0,
        gid: int = 0,
        mtime: int = 0,
        size: int = 0,
        rdevmajor: int = 0,
        rdevminor: int = 0,
    ) -> bytes:
        """Start an entry: finish the previous one (zeros for unwritten data, pad to 4), then the
        110-byte header, the name and its NUL, padded to 4."""
        if self._closed:
            raise errors.RamdiskError("cpio archive already closed", code=ErrorCode.CPIO)
        bname = name.encode("utf-8", "surrogateescape") if isinstance(name, str) else name
        out = bytearray(self._out(bytes(self._remaining)))
        out += self._out(self._pad(4))
        nlink = 2 if ftype == TYPE_DIR else 1
        hdr = b"".join(
            [
                MAGIC,
                _field(self._inode, "inode"),
                _field((mode & 0xFFF) | ((ftype & 0xF) << 12), "mode"),
                _field(uid, "uid"),
                _field(gid, "gid"),
                _field(nlink, "nlink"),
                _field(mtime, "mtime"),
                _field(size, "filesize"),
                _field(3, "devmajor"),
                _field(1, "devminor"),
                _field(rdevmajor, "rdevmajor"),
                _field(rdevminor, "rdevminor"),
                _field(len(bname) + 1, "namesize"),
                _field(0, "check"),
            ]
        )
        out += self._out(hdr)
        out += self._out(bname + b"\0")
        self._inode += 1
        self._remaining = size
        out += self._out(self._pad(4))
        return bytes(out)

    def data(self, chunk: bytes | memoryview) -> bytes | memoryview:
        """Entry data; anything past the declared size is dropped, as gocpio does."""
        if len(chunk) > self._remaining:
            chunk = chunk[: self._remaining]
        self._remaining -= len(chunk)
        self._length += len(chunk)
        return chunk

    def close(self) -> bytes:
        """The trailer entry (mode 0, nlink 1), then zeros up to a multiple of 512."""
        out = self.header(name=TRAILER, ftype=0, mode=0)
        out += self._out(self._pad(512))
        self._closed = True
        return out
