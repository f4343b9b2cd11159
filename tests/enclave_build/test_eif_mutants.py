"""Malformed EIFs: each mutant is rejected by the reader with the expected typed error (§9.3).

Mutants are made from a well-formed EIF (written by the package) or encoded from scratch here
with ``struct`` (for shapes the writer refuses to make). Unless a mutant is about the CRC, the CRC
is recomputed after mutating, so the check under test is the one that fires.
"""

from __future__ import annotations

import json
import struct
import zlib

import pytest

from enclave_build import errors
from enclave_build.eif import EifReader
from enclave_build.errors import ErrorCode as E

from .conftest import SMALL_METADATA, X86_CMDLINE

K, C, R, S, M = 1, 2, 3, 4, 5


def raw_eif(sections, *, version=4, flags=0, num=None, reserved=0, unused=0, offsets=None, sizes=None, fix_crc=True, crc=None):
    """Encode an EIF from (type, data[, section_flags[, declared_size]]) tuples, no validation."""
    hdr_sizes = [len(s[1]) for s in sections]
    offs, pos = [], 548
    for s in sections:
        offs.append(pos)
        pos += 12 + len(s[1])
    offs = (offsets or offs) + [0] * (32 - len(offsets or offs))
    szs = (sizes or hdr_sizes) + [0] * (32 - len(sizes or hdr_sizes))
    body = b"".join(struct.pack(">HHQ", s[0], s[2] if len(s) > 2 else 0, s[3] if len(s) > 3 else len(s[1])) + s[1] for s in sections)
    head = struct.pack(">4sHHQQHH", b".eif", version, flags, 1 << 30, 2, reserved, len(sections) if num is None else num)
    head += struct.pack(">32Q", *offs[:32]) + struct.pack(">32Q", *szs[:32]) + struct.pack(">I", unused)
    value = zlib.crc32(head + body) if crc is None else crc
    return head + struct.pack(">I", value) + body


GOOD = [(K, b"K" * 64), (C, X86_CMDLINE), (M, SMALL_METADATA), (R, b"r0" * 40), (R, b"r1" * 40)]


def good() -> bytearray:
    return bytearray(raw_eif(GOOD))


def fix_crc(b: bytearray) -> bytearray:
    b[544:548] = zlib.crc32(bytes(b[:544] + b[548:])).to_bytes(4, "big")
    return b


def hset(field_off: int, fmt: str, value: int, crc: bool = True):
    def f(b: bytearray) -> bytearray:
        struct.pack_into(">" + fmt, b, field_off, value)
        return fix_crc(b) if crc else b
    return f


OFF = lambda i: 28 + 8 * i  # noqa: E731
SIZE = lambda i: 28 + 256 + 8 * i  # noqa: E731
SEC = [548]
for _t, _d in GOOD[:-1]:
    SEC.append(SEC[-1] + 12 + len(_d))


def cut(n):
    return lambda b: b[:n] if n >= 0 else b[:n]


def flip(off):
    def f(b):
        b[off] ^= 0x01
        return b
    return f


def mutants():
    m = []
    add = lambda name, fn, code: m.append(pytest.param(fn, code, id=name))  # noqa: E731
    # magic
    for name, magic in [("magic-elf", b".elf"), ("magic-zero", b"\0\0\0\0"), ("magic-case", b".EIF"), ("magic-swapped", b"eif.")]:
        add(name, lambda b, magic=magic: bytearray(magic) + b[4:], E.BAD_MAGIC)
    # version
    for v in (0, 1, 2, 3, 5, 0xFFFF):
        add(f"version-{v}", hset(4, "H", v), E.UNSUPPORTED_VERSION)
    # header flags
    for fl in (2, 0x8000, 0xFFFF):
        add(f"header-flags-{fl:#x}", hset(6, "H", fl), E.BAD_HEADER_FLAGS)
    add("reserved-1", hset(24, "H", 1), E.BAD_RESERVED)
    add("unused-1", hset(540, "I", 1), E.BAD_RESERVED)
    # section count
    for n in (0, 3, 33, 0xFFFF):
        add(f"num-sections-{n}", hset(26, "H", n), E.BAD_SECTION_COUNT)
    add("num-sections-too-few", hset(26, "H", 4), E.BAD_SECTION_TABLE)
    add("num-sections-too-many", hset(26, "H", 6), E.BAD_SECTION_TABLE)
    # offsets table
    add("offset0-zero", hset(OFF(0), "Q", 0), E.BAD_SECTION_TABLE)
    add("offset0-547", hset(OFF(0), "Q", 547), E.BAD_SECTION_TABLE)
    add("offset0-549", hset(OFF(0), "Q", 549), E.BAD_SECTION_TABLE)
    add("offset3-plus-one", hset(OFF(3), "Q", SEC[3] + 1), E.BAD_SECTION_TABLE)
    add("offset3-minus-one", hset(OFF(3), "Q", SEC[3] - 1), E.BAD_SECTION_TABLE)
    add("offset4-huge", hset(OFF(4), "Q", 2**64 - 1), E.BAD_SECTION_TABLE)
    add("unused-slot-offset", hset(OFF(10), "Q", 548), E.BAD_SECTION_TABLE)
    add("unused-slot-size", hset(SIZE(31), "Q", 1), E.BAD_SECTION_TABLE)
    # sizes table vs section headers
    add("size0-plus-one", hset(SIZE(0), "Q", 65), E.BAD_SECTION_TABLE)
    add("size2-huge", hset(SIZE(2), "Q", 2**63), E.BAD_SECTION_TABLE)
    add("last-size-table-plus-one", hset(SIZE(4), "Q", 81), E.SECTION_SIZE_MISMATCH)
    add("last-size-table-huge", hset(SIZE(4), "Q", 2**64 - 1), E.SECTION_SIZE_MISMATCH)
    add("kernel-header-size-field", hset(SEC[0] + 4, "Q", 63), E.SECTION_SIZE_MISMATCH)
    add("ramdisk-header-size-field", hset(SEC[3] + 4, "Q", 0), E.SECTION_SIZE_MISMATCH)
    # section header type and flags
    for t in (0, 6, 0xFFFF):
        add(f"section-type-{t}", hset(SEC[1], "H", t), E.BAD_SECTION_TYPE)
    for fl in (1, 0x8000):
        add(f"section-flags-{fl:#x}", hset(SEC[3] + 2, "H", fl), E.BAD_SECTION_FLAGS)
    add("kernel-typed-ramdisk", hset(SEC[0], "H", R), E.SECTION_ORDER)
    add("ramdisk-typed-signature-not-last", hset(SEC[3], "H", S), E.SECTION_ORDER)
    add("last-ramdisk-typed-metadata", hset(SEC[4], "H", M), E.SECTION_ORDER)
    # order and count, encoded from scratch
    for name, secs in [
        ("order-cmdline-first", [GOOD[1], GOOD[0], GOOD[2], GOOD[3]]),
        ("order-metadata-last", [GOOD[0], GOOD[1], GOOD[3], GOOD[2]]),
        ("order-metadata-before-cmdline", [GOOD[0], GOOD[2], GOOD[1], GOOD[3]]),
        ("no-ramdisk-only-signature", [GOOD[0], GOOD[1], GOOD[2], (S, b"\x80")]),
        ("signature-not-last", [*GOOD[:4], (S, b"\x80"), GOOD[4]]),
        ("two-kernels", [GOOD[0], GOOD[0], GOOD[1], GOOD[2], GOOD[3]]),
        ("two-metadata", [*GOOD[:3], GOOD[2], GOOD[3]]),
    ]:
        add(name, lambda b, secs=secs: bytearray(raw_eif(secs)), E.SECTION_ORDER)
    # CRC (not recomputed)
    add("crc-field-flipped", flip(547), E.CRC_MISMATCH)
    add("crc-kernel-byte", flip(SEC[0] + 12), E.CRC_MISMATCH)
    add("crc-ramdisk-last-byte", lambda b: flip(len(b) - 1)(b), E.CRC_MISMATCH)
    add("crc-default-mem", hset(8, "Q", 2 << 30, crc=False), E.CRC_MISMATCH)
    add("crc-default-cpus", hset(16, "Q", 4, crc=False), E.CRC_MISMATCH)
    add("crc-cmdline-byte", flip(SEC[1] + 12), E.CRC_MISMATCH)
    # truncation
    for n in (0, 3, 4, 100, 547, 548, 553, 559, SEC[0] + 30, SEC[3] + 12, -1):
        add(f"truncated-{n}", cut(n), E.TRUNCATED)
    # trailing bytes
    add("trailing-1", lambda b: b + b"\0", E.TRAILING_DATA)
    add("trailing-512", lambda b: b + bytes(512), E.TRAILING_DATA)
    # oversized buffered sections
    add("cmdline-too-large", lambda b: bytearray(raw_eif([GOOD[0], (C, b"a" * 4097), *GOOD[2:]])), E.SECTION_TOO_LARGE)
    add("metadata-too-large", lambda b: bytearray(raw_eif([*GOOD[:2], (M, b" " * (1024 * 1024 + 1)), *GOOD[3:]])), E.SECTION_TOO_LARGE)
    add("signature-too-large", lambda b: bytearray(raw_eif([*GOOD, (S, b"\x80" * (64 * 1024 + 1))])), E.SECTION_TOO_LARGE)
    # contents of the small sections
    add("cmdline-nul", lambda b: bytearray(raw_eif([GOOD[0], (C, b"console=ttyS0\0"), *GOOD[2:]])), E.BAD_CMDLINE)
    add("metadata-not-json", lambda b: bytearray(raw_eif([*GOOD[:2], (M, b"{not json"), *GOOD[3:]])), E.BAD_METADATA)
    md = json.loads(SMALL_METADATA)
    del md["BuildMetadata"]["BuildTime"]
    add("metadata-missing-field", lambda b: bytearray(raw_eif([*GOOD[:2], (M, json.dumps(md).encode()), *GOOD[3:]])), E.BAD_METADATA)
    add("metadata-array", lambda b: bytearray(raw_eif([*GOOD[:2], (M, b"[]"), *GOOD[3:]])), E.BAD_METADATA)
    add("signature-garbage", lambda b: bytearray(raw_eif([*GOOD, (S, b"\xff\x00")])), E.BAD_SIGNATURE_SECTION)
    add("signature-empty-array", lambda b: bytearray(raw_eif([*GOOD, (S, b"\x80")])), E.BAD_SIGNATURE_SECTION)
    return m


MUTANTS = mutants()


def test_there_are_at_least_fifty_mutants():
    assert len(MUTANTS) >= 50


def test_the_unmutated_file_is_accepted():
    r = EifReader()
    assert r.receive_data(bytes(good()))
    r.end_of_data()
    assert r.done


def _read(data: bytes, chunk: int) -> None:
    r = EifReader()
    for i in range(0, len(data), chunk):
        r.receive_data(data[i : i + chunk])
    r.end_of_data()


@pytest.mark.parametrize("mutate,code", MUTANTS)
@pytest.mark.parametrize("chunk", [1 << 20, 7])
def test_mutant_is_rejected_with_its_code(mutate, code, chunk):
    data = bytes(mutate(good()))
    if chunk == 7 and len(data) > 100_000:
        chunk = 4096
    with pytest.raises(errors.EifFormatError) as ei:
        _read(data, chunk)
    assert ei.value.code is code, str(ei.value)
    assert isinstance(ei.value, errors.EifBuildError)


def test_crc_mismatch_is_reported_not_raised_when_asked():
    b = flip(SEC[0] + 12)(good())
    r = EifReader(check_crc=False)
    events = r.receive_data(bytes(b))
    ended = events[-1]
    assert not ended.crc_ok and ended.crc_expected != ended.crc_computed


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300)
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4), st.booleans(), st.integers(1, 600))
def test_random_corruption_only_ever_raises_typed_errors(edits, recompute_crc, chunk):
    b = good()
    for pos, val in edits:
        b[pos % len(b)] = val
    if recompute_crc:
        fix_crc(b)
    try:
        _read(bytes(b), chunk)
    except errors.EifFormatError:
        pass
