"""An independent EIF and cpio reader for the tests.

Written from the fact sheet and from qemu's ``hw/core/eif.c`` reading order, NOT from
``enclave_build``: this module imports nothing from the package under test and shares no code with
it, so a bug in the writer cannot hide behind the same bug here. Whole-bytes, simple, slow.
"""

from __future__ import annotations

import hashlib
import zlib

HDR_LEN = 548
SEC_LEN = 12
TYPE_NAMES = {1: "kernel", 2: "cmdline", 3: "ramdisk", 4: "signature", 5: "metadata"}


class OracleError(Exception):
    pass


def _be(data: bytes, off: int, n: int) -> int:
    return int.from_bytes(data[off : off + n], "big")


def parse_eif(data: bytes) -> dict:
    """Parse and check an EIF; return header fields, sections and the independently computed PCRs."""
    if len(data) < HDR_LEN:
        raise OracleError("short header")
    if data[0:4] != b".eif":
        raise OracleError("magic")
    hdr = {
        "version": _be(data, 4, 2),
        "flags": _be(data, 6, 2),
        "default_mem": _be(data, 8, 8),
        "default_cpus": _be(data, 16, 8),
        "reserved": _be(data, 24, 2),
        "num_sections": _be(data, 26, 2),
        "offsets": [_be(data, 28 + 8 * i, 8) for i in range(32)],
        "sizes": [_be(data, 28 + 256 + 8 * i, 8) for i in range(32)],
        "unused": _be(data, 540, 4),
        "crc": _be(data, 544, 4),
    }
    sections = []
    for i in range(hdr["num_sections"]):
        off = hdr["offsets"][i]
        if off + SEC_LEN > len(data):
            raise OracleError(f"section {i} header out of file")
        stype, sflags, ssize = _be(data, off, 2), _be(data, off + 2, 2), _be(data, off + 4, 8)
        if ssize != hdr["sizes"][i]:
            raise OracleError(f"section {i} size")
        if sflags != 0:
            raise OracleError(f"section {i} flags")
        if off + SEC_LEN + ssize > len(data):
            raise OracleError(f"section {i} data out of file")
        sections.append({"type": TYPE_NAMES.get(stype, stype), "offset": off, "data": data[off + SEC_LEN : off + SEC_LEN + ssize]})
    # contiguity, as the writer must produce it
    pos = HDR_LEN
    for s in sections:
        if s["offset"] != pos:
            raise OracleError("sections not contiguous")
        pos += SEC_LEN + len(s["data"])
    if pos != len(data):
        raise OracleError("file length")
    # CRC-32 (IEEE, zlib) of header minus the CRC field, then each section header and data
    crc = zlib.crc32(data[:544])
    for s in sections:
        crc = zlib.crc32(data[s["offset"] : s["offset"] + SEC_LEN + len(s["data"])], crc)
    hdr["crc_ok"] = crc == hdr["crc"]
    return {"header": hdr, "sections": sections, "pcrs": pcrs(sections)}


def _pcr(parts: list[bytes]) -> str:
    inner = hashlib.sha384()
    for p in parts:
        inner.update(p)
    return hashlib.sha384(b"\x00" * 48 + inner.digest()).hexdigest()


def pcrs(sections: list[dict]) -> dict:
    kernel = [s["data"] for s in sections if s["type"] == "kernel"]
    cmdline = [s["data"] for s in sections if s["type"] == "cmdline"]
    rds = [s["data"] for s in sections if s["type"] == "ramdisk"]
    return {
        "PCR0": _pcr(kernel + cmdline + rds),
        "PCR1": _pcr(kernel + cmdline + rds[:1]),
        "PCR2": _pcr(rds[1:]),
    }


def parse_cpio(data: bytes) -> list[dict]:
    """Parse a "newc" archive; check alignment, the trailer and the 512-byte total padding."""
    out, pos = [], 0
    while True:
        if data[pos : pos + 6] != b"070701":
            raise OracleError(f"cpio magic at {pos}")
        f = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        ino, mode, uid, gid, nlink, mtime, size, maj, mnr, rmaj, rmin, namesize, check = f
        name = data[pos + 110 : pos + 110 + namesize]
        if not name.endswith(b"\0"):
            raise OracleError("name NUL")
        name = name[:-1].decode()
        dpos = pos + 110 + namesize
        dpos += (-dpos) % 4
        body = data[dpos : dpos + size]
        entry = dict(ino=ino, mode=mode, uid=uid, gid=gid, nlink=nlink, mtime=mtime, size=size, devmajor=maj,
                     devminor=mnr, rdevmajor=rmaj, rdevminor=rmin, check=check, name=name, data=body)
        pos = dpos + size
        pos += (-pos) % 4
        if name == "TRAILER!!!":
            break
        out.append(entry)
    if len(data) % 512 or any(data[pos:]):
        raise OracleError("archive padding")
    return out
