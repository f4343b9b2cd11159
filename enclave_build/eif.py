"""The EIF container: layout constants, a streaming writer and a sans-IO reader.

Spec: docs/spec/09-eif.md §9.2 (layout), §9.3 (reader rules). Both classes work on bytes only;
files, sockets and Docker live at the edges (``build.py``, ``cli.py``).

Reader style (after python-hyper/h2): ``EifReader.receive_data(chunk)`` returns a list of events
in the order the bytes define them; ``end_of_data()`` says the input is over. Anything the spec does
not allow raises a subclass of :class:`enclave_build.errors.EifFormatError` carrying a stable code.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
import zlib
from typing import Sequence

from . import errors

MAGIC = b".eif"
CURRENT_VERSION = 4
MAX_NUM_SECTIONS = 32
HEADER_SIZE = 548
CRC_OFFSET = 544
SECTION_HEADER_SIZE = 12
FLAG_ARCH_ARM64 = 0x0001
KNOWN_HEADER_FLAGS = FLAG_ARCH_ARM64
DEFAULT_MEM = 1024 * 1024 * 1024
DEFAULT_CPUS = 2

# Sections this reader buffers whole are bounded (§9.3); kernel and ramdisks are streamed.
MAX_CMDLINE_SIZE = 4096
MAX_METADATA_SIZE = 1024 * 1024
MAX_SIGNATURE_SIZE = 64 * 1024

_HEADER = struct.Struct(">4sHHQQHH32Q32QII")
_SECTION = struct.Struct(">HHQ")
assert _HEADER.size == HEADER_SIZE and _SECTION.size == SECTION_HEADER_SIZE


class SectionType(enum.IntEnum):
    KERNEL = 1
    CMDLINE = 2
    RAMDISK = 3
    SIGNATURE = 4
    METADATA = 5


@dataclasses.dataclass(frozen=True, kw_only=True)
class EifHeader:
    version: int
    flags: int
    default_mem: int
    default_cpus: int
    reserved: int
    num_sections: int
    section_offsets: tuple[int, ...]
    section_sizes: tuple[int, ...]
    unused: int
    crc32: int
    magic: bytes = MAGIC

    def to_bytes(self) -> bytes:
        return _HEADER.pack(
            self.magic,
            self.version,
            self.flags,
            self.default_mem,
            self.default_cpus,
            self.reserved,
            self.num_sections,
            *self.section_offsets,
            *self.section_sizes,
            self.unused,
            self.crc32,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> "EifHeader":
        """Decode without validating (see :class:`EifReader` for the checks)."""
        if len(data) != HEADER_SIZE:
            raise errors.TruncatedEif("EIF header", expected=HEADER_SIZE, actual=len(data))
        f = _HEADER.unpack(data)
        return cls(
            magic=f[0],
            version=f[1],
            flags=f[2],
            default_mem=f[3],
            default_cpus=f[4],
            reserved=f[5],
            num_sections=f[6],
            section_offsets=tuple(f[7:39]),
            section_sizes=tuple(f[39:71]),
            unused=f[71],
            crc32=f[72],
        )


@dataclasses.dataclass(frozen=True)
class SectionSpec:
    """A section to be written: its type and the exact size of its data."""

    type: SectionType
    size: int


def encode_section_header(section_type: int, size: int, flags: int = 0) -> bytes:
    return _SECTION.pack(section_type, flags, size)


def section_offsets(sizes: Sequence[int]) -> list[int]:
    """Offsets of each section header: no padding, first right after the EIF header (§9.2)."""
    offsets, pos = [], HEADER_SIZE
    for size in sizes:
        offsets.append(pos)
        pos += SECTION_HEADER_SIZE + size
    return offsets


def check_section_order(types: Sequence[int], *, error=errors.SectionOrderError) -> None:
    """Version 4 order: kernel, cmdline, metadata, ramdisk+, [signature] (§9.2)."""
    n = len(types)
    if n < 4 or n > MAX_NUM_SECTIONS:
        raise errors.BadSectionCount(
            "an EIF has between 4 and 32 sections", expected="4..32", actual=n
        )
    prefix = [SectionType.KERNEL, SectionType.CMDLINE, SectionType.METADATA]
    for i, want in enumerate(prefix):
        if types[i] != want:
            raise error(f"section {i} out of order", expected=want.name, actual=_type_name(types[i]))
    rest = list(types[3:])
    if rest and rest[-1] == SectionType.SIGNATURE:
        rest.pop()
    if not rest:
        raise error("an EIF needs at least one ramdisk", expected="RAMDISK", actual=None)
    for j, t in enumerate(rest, start=3):
        if t != SectionType.RAMDISK:
            raise error(f"section {j} out of order", expected="RAMDISK", actual=_type_name(t))


def _type_name(t: int) -> str:
    try:
        return SectionType(t).name
    except ValueError:
        return str(t)


class EifWriter:
    """Streams an EIF: the caller writes what each call returns, in order.

    Usage (seekable output)::

        w = EifWriter(specs)
        out.write(w.placeholder_header())
        for spec, source in zip(specs, sources):
            out.write(w.begin_section())
            for chunk in source:
                out.write(w.section_data(chunk))
        out.seek(0); out.write(w.finish())

    The CRC (§9.2) covers header bytes 0..544 then every section header and its data, so it is
    complete only after the last byte; the header is therefore emitted last, at offset 0.
    Memory use is constant: chunks pass straight through.
    """

    def __init__(
        self,
        sections: Sequence[SectionSpec],
        *,
        flags: int = 0,
        default_mem: int = DEFAULT_MEM,
        default_cpus: int = DEFAULT_CPUS,
    ) -> None:
        types = [s.type for s in sections]
        check_section_order(types, error=errors.WriterStateError)
        if flags & ~KNOWN_HEADER_FLAGS:
            raise errors.WriterStateError("unknown header flags", actual=flags)
        for s in sections:
            if s.size < 0:
                raise errors.WriterStateError("negative section size", actual=s.size)
        self._specs = list(sections)
        sizes = [s.size for s in sections]
        pad = [0] * (MAX_NUM_SECTIONS - len(sizes))
        self._header = EifHeader(
            version=CURRENT_VERSION,
            flags=flags,
            default_mem=default_mem,
            default_cpus=default_cpus,
            reserved=0,
            num_sections=len(sections),
            section_offsets=tuple(section_offsets(sizes) + pad),
            section_sizes=tuple(sizes + pad),
            unused=0,
            crc32=0,
        )
        self._crc = zlib.crc32(self._header.to_bytes()[:CRC_OFFSET])
        self._index = -1
        self._remaining = 0
        self.total_size = HEADER_SIZE + sum(SECTION_HEADER_SIZE + s for s in sizes)

    def placeholder_header(self) -> bytes:
        """The header with a zero CRC: write it first, overwrite with :meth:`finish`."""
        return self._header.to_bytes()

    def begin_section(self) -> bytes:
        if self._remaining:
            raise errors.WriterStateError(
                "previous section incomplete", expected=0, actual=self._remaining
            )
        self._index += 1
        if self._index >= len(self._specs):
            raise errors.WriterStateError("no more sections", actual=self._index)
        spec = self._specs[self._index]
        hdr = encode_section_header(spec.type, spec.size)
        self._crc = zlib.crc32(hdr, self._crc)
        self._remaining = spec.size
        return hdr

    def section_data(self, data: bytes | bytearray | memoryview) -> bytes | bytearray | memoryview:
        n = len(data)
        if n > self._remaining:
            raise errors.WriterStateError(
                "more data than the section size", expected=self._remaining, actual=n
            )
        self._remaining -= n
        self._crc = zlib.crc32(data, self._crc)
        return data

    @property
    def current_section(self) -> SectionSpec:
        return self._specs[self._index]

    def finish(self) -> bytes:
        if self._remaining or self._index != len(self._specs) - 1:
            raise errors.WriterStateError(
                "sections incomplete",
                expected=len(self._specs),
                actual=self._index + 1 - (1 if self._remaining else 0),
            )
        return dataclasses.replace(self._header, crc32=self._crc).to_bytes()

    @property
    def crc32(self) -> int:
        return self._crc


# ---------------------------------------------------------------------------------------------
# Reader events (past tense, keyword-only, after h2's events.py)


@dataclasses.dataclass(frozen=True, kw_only=True)
class HeaderReceived:
    header: EifHeader


@dataclasses.dataclass(frozen=True, kw_only=True)
class SectionStarted:
    index: int
    type: SectionType
    size: int
    offset: int
    ramdisk_index: int | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class SectionDataReceived:
    index: int
    type: SectionType
    ramdisk_index: int | None
    data: bytes | memoryview


@dataclasses.dataclass(frozen=True, kw_only=True)
class SectionEnded:
    index: int
    type: SectionType
    # Whole data of the small sections (cmdline, metadata, signature); None for streamed ones.
    data: bytes | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class EifEnded:
    crc_expected: int
    crc_computed: int

    @property
    def crc_ok(self) -> bool:
        return self.crc_expected == self.crc_computed


_BUFFERED_LIMITS = {
    SectionType.CMDLINE: MAX_CMDLINE_SIZE,
    SectionType.METADATA: MAX_METADATA_SIZE,
    SectionType.SIGNATURE: MAX_SIGNATURE_SIZE,
}


class _State(enum.Enum):
    HEADER = "header"
    SECTION_HEADER = "section-header"
    SECTION_DATA = "section-data"
    DONE = "done"


class EifReader:
    """Sans-IO EIF parser and validator (docs/spec/09-eif.md §9.3).

    ``check_crc=False`` reports a CRC mismatch in :class:`EifEnded` instead of raising (what
    ``describe`` needs to print ``CheckCRC: false``). Section data events may reference the caller's
    buffer (memoryview): consume them before feeding the next chunk.
    """

    def __init__(self, *, check_crc: bool = True) -> None:
        self._check_crc = check_crc
        self._state = _State.HEADER
        self._buf = bytearray()
        self._pos = 0  # absolute offset of the next byte to be consumed
        self._crc = 0
        self.header: EifHeader | None = None
        self._index = -1
        self._types: list[SectionType] = []
        self._remaining = 0
        self._ramdisks = 0
        self._collect: bytearray | None = None
        self._cur_type: SectionType | None = None
        self._cur_ramdisk: int | None = None

    # -- public API -------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> list:
        events: list = []
        view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
        while len(view):
            if self._state is _State.DONE:
                raise errors.TrailingData(
                    "bytes after the last section", offset=self._pos, actual=len(view)
                )
            if self._state is _State.SECTION_DATA:
                n = min(len(view), self._remaining)
                chunk = view[:n]
                view = view[n:]
                self._consume_section_data(chunk, events)
                continue
            need = HEADER_SIZE if self._state is _State.HEADER else SECTION_HEADER_SIZE
            take = min(need - len(self._buf), len(view))
            self._buf += view[:take]
            view = view[take:]
            if self._state is _State.HEADER and len(self._buf) >= 4 and bytes(self._buf[:4]) != MAGIC:
                raise errors.BadMagic("not an EIF", expected=MAGIC, actual=bytes(self._buf[:4]), offset=0)
            if len(self._buf) < need:
                break
            raw = bytes(self._buf)
            self._buf.clear()
            if self._state is _State.HEADER:
                self._on_header(raw, events)
            else:
                self._on_section_header(raw, events)
        return events

    def end_of_data(self) -> list:
        if self._state is not _State.DONE:
            where = {
                _State.HEADER: "EIF header",
                _State.SECTION_HEADER: f"section {self._index + 1} header",
                _State.SECTION_DATA: f"section {self._index} data",
            }[self._state]
            raise errors.TruncatedEif(f"input ended inside the {where}", offset=self._pos + len(self._buf))
        return []

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    # -- internals --------------------------------------------------------------------------

    def _on_header(self, raw: bytes, events: list) -> None:
        h = EifHeader.from_bytes(raw)
        if h.version != CURRENT_VERSION:
            raise errors.UnsupportedVersion(
                "only EIF version 4 is read", expected=CURRENT_VERSION, actual=h.version, offset=4
            )
        if h.flags & ~KNOWN_HEADER_FLAGS:
            raise errors.BadHeaderFlags("unknown header flags", expected=f"& {KNOWN_HEADER_FLAGS:#x}", actual=h.flags, offset=6)
        if h.reserved != 0:
            raise errors.BadReserved("reserved field", expected=0, actual=h.reserved, offset=24)
        if h.unused != 0:
            raise errors.BadReserved("unused field", expected=0, actual=h.unused, offset=540)
        n = h.num_sections
        if n < 4 or n > MAX_NUM_SECTIONS:
            raise errors.BadSectionCount("num_sections", expected="4..32", actual=n, offset=26)
        want = section_offsets(h.section_sizes[:n])
        for i in range(n):
            if h.section_offsets[i] != want[i]:
                raise errors.BadSectionTable(
                    f"offset of section {i}", expected=want[i], actual=h.section_offsets[i], offset=28 + 8 * i
                )
        for i in range(n, MAX_NUM_SECTIONS):
            if h.section_offsets[i] or h.section_sizes[i]:
                raise errors.BadSectionTable(
                    f"unused table slot {i} is not zero",
                    expected=(0, 0),
                    actual=(h.section_offsets[i], h.section_sizes[i]),
                    offset=28 + 8 * i,
                )
        self.header = h
        self._crc = zlib.crc32(raw[:CRC_OFFSET])
        self._pos = HEADER_SIZE
        self._state = _State.SECTION_HEADER
        events.append(HeaderReceived(header=h))

    def _on_section_header(self, raw: bytes, events: list) -> None:
        assert self.header is not None
        stype, flags, size = _SECTION.unpack(raw)
        idx = self._index + 1
        at = self._pos
        try:
            st = SectionType(stype)
        except ValueError:
            raise errors.BadSectionType(f"section {idx} type", expected="1..5", actual=stype, offset=at) from None
        if flags != 0:
            raise errors.BadSectionFlags(f"section {idx} flags", expected=0, actual=flags, offset=at + 2)
        if size != self.header.section_sizes[idx]:
            raise errors.SectionSizeMismatch(
                f"section {idx} size disagrees with the header table",
                expected=self.header.section_sizes[idx],
                actual=size,
                offset=at + 4,
            )
        self._check_order(idx, st, at)
        limit = _BUFFERED_LIMITS.get(st)
        if limit is not None and size > limit:
            raise errors.SectionTooLarge(f"{st.name.lower()} section", expected=f"<= {limit}", actual=size, offset=at + 4)
        self._crc = zlib.crc32(raw, self._crc)
        self._index = idx
        self._types.append(st)
        self._cur_type = st
        self._cur_ramdisk = None
        if st is SectionType.RAMDISK:
            self._cur_ramdisk = self._ramdisks
            self._ramdisks += 1
        self._remaining = size
        self._collect = bytearray() if limit is not None else None
        self._pos += SECTION_HEADER_SIZE
        events.append(
            SectionStarted(index=idx, type=st, size=size, offset=at, ramdisk_index=self._cur_ramdisk)
        )
        self._state = _State.SECTION_DATA
        if size == 0:
            self._end_section(events)

    def _check_order(self, idx: int, st: SectionType, at: int) -> None:
        n = self.header.num_sections  # type: ignore[union-attr]
        fixed = {0: SectionType.KERNEL, 1: SectionType.CMDLINE, 2: SectionType.METADATA}
        if idx in fixed:
            want = fixed[idx]
        elif st is SectionType.SIGNATURE and idx == n - 1 and self._ramdisks >= 1:
            want = SectionType.SIGNATURE
        else:
            want = SectionType.RAMDISK
        if st is not want:
            raise errors.SectionOrderError(f"section {idx}", expected=want.name, actual=st.name, offset=at)

    def _consume_section_data(self, chunk: memoryview, events: list) -> None:
        self._crc = zlib.crc32(chunk, self._crc)
        self._remaining -= len(chunk)
        self._pos += len(chunk)
        if self._collect is not None:
            self._collect += chunk
        else:
            events.append(
                SectionDataReceived(
                    index=self._index, type=self._cur_type, ramdisk_index=self._cur_ramdisk, data=chunk
                )
            )
        if self._remaining == 0:
            self._end_section(events)

    def _end_section(self, events: list) -> None:
        data = bytes(self._collect) if self._collect is not None else None
        self._collect = None
        if self._cur_type is SectionType.CMDLINE and data is not None and b"\0" in data:
            raise errors.BadCmdline("NUL byte in the kernel command line", offset=self._pos - len(data) + data.index(b"\0"))
        if self._cur_type is SectionType.METADATA and data is not None:
            from .metadata import decode_metadata

            decode_metadata(data)
        if self._cur_type is SectionType.SIGNATURE and data is not None:
            from .signing import decode_signature_section

            decode_signature_section(data)
        events.append(SectionEnded(index=self._index, type=self._cur_type, data=data))
        if self._index == self.header.num_sections - 1:  # type: ignore[union-attr]
            self._state = _State.DONE
            ended = EifEnded(crc_expected=self.header.crc32, crc_computed=self._crc)  # type: ignore[union-attr]
            if self._check_crc and not ended.crc_ok:
                raise errors.CrcMismatch(
                    "eif_crc32", expected=f"{ended.crc_expected:#010x}", actual=f"{ended.crc_computed:#010x}", offset=CRC_OFFSET
                )
            events.append(ended)
        else:
            self._state = _State.SECTION_HEADER
