"""Ramdisks as linuxkit writes them (§9.5): cpio bytes, the bootstrap ramdisk, linuxkit's edits."""

from __future__ import annotations

import pytest

from enclave_build import cpio, errors
from enclave_build.ramdisk import (
    DEFAULT_MTIME,
    DIR,
    LNK,
    REG,
    SYM,
    TarEntry,
    bootstrap_entries,
    bytes_reader,
    customer_entries,
    initrd_chunks,
)

from .eif_oracle import parse_cpio


def _initrd(entries) -> bytes:
    return b"".join(bytes(c) for c in initrd_chunks(entries))


def test_cpio_bytes_for_one_file_match_a_hand_written_archive():
    w = cpio.CpioWriter()
    out = w.header(name="a", ftype=cpio.TYPE_REG, mode=0o644, uid=1, gid=2, mtime=0x5F5E1000, size=2) + bytes(w.data(b"hi")) + w.close()
    hdr1 = b"070701" + b"".join(b"%08x" % v for v in [721, 0o100644, 1, 2, 1, 0x5F5E1000, 2, 3, 1, 0, 0, 2, 0])
    # 110 + "a\0" = 112 (aligned), data "hi" then 2 zeros to 116
    part1 = hdr1 + b"a\0" + b"hi" + b"\0\0"
    hdr2 = b"070701" + b"".join(b"%08x" % v for v in [722, 0, 0, 0, 1, 0, 0, 3, 1, 0, 0, 11, 0])
    part2 = hdr2 + b"TRAILER!!!\0" + b"\0"  # 116 + 110 + 11 = 237 -> pad to 240
    expected = part1 + part2
    expected += bytes(512 - len(expected))
    assert out == expected


def test_cpio_refuses_fields_that_do_not_fit_eight_hex_digits():
    with pytest.raises(errors.RamdiskError):
        cpio.CpioWriter().header(name="big", ftype=cpio.TYPE_REG, mode=0o644, size=1 << 32)
    with pytest.raises(errors.RamdiskError):
        cpio.CpioWriter().header(name="old", ftype=cpio.TYPE_REG, mode=0o644, mtime=-1)


def test_cpio_fills_unwritten_data_with_zeros_and_drops_extra():
    w = cpio.CpioWriter()
    out = w.header(name="f", ftype=cpio.TYPE_REG, mode=0o600, size=5) + bytes(w.data(b"abcdefgh")) + w.close()
    e = parse_cpio(out)
    assert e[0]["data"] == b"abcde"
    w = cpio.CpioWriter()
    out = w.header(name="f", ftype=cpio.TYPE_REG, mode=0o600, size=5) + bytes(w.data(b"ab")) + w.close()
    assert parse_cpio(out)[0]["data"] == b"ab\0\0\0"


def test_bootstrap_ramdisk_is_dev_init_nsm():
    data = _initrd(bootstrap_entries(b"INIT" * 3, b"NSM"))
    assert len(data) % 512 == 0
    es = parse_cpio(data)
    assert [(e["name"], oct(e["mode"]), e["nlink"], e["ino"]) for e in es] == [
        ("dev", "0o40755", 2, 721), ("init", "0o100755", 1, 722), ("nsm.ko", "0o100755", 1, 723)]
    assert all(e["mtime"] == DEFAULT_MTIME and e["uid"] == 0 and e["gid"] == 0 for e in es)
    assert all((e["devmajor"], e["devminor"], e["rdevmajor"], e["rdevminor"], e["check"]) == (3, 1, 0, 0, 0) for e in es)
    assert es[1]["data"] == b"INIT" * 3 and es[2]["data"] == b"NSM"
    assert b"TRAILER!!!" in data and data[-1] == 0


def _e(name, type_=REG, data=b"", **kw):
    return TarEntry(name=name, type=type_, mode=kw.pop("mode", 0o100644), size=len(data), read=bytes_reader(data), mtime=kw.pop("mtime", 1700000000), **kw)


EXPORT = [
    _e(".dockerenv", mode=0o100755),
    _e("bin/", DIR, mode=0o40755),
    _e("bin/a", data=b"data"),
    _e("bin/b", LNK, linkname="bin/a"),
    _e("bin/c", SYM, linkname="a", mode=0o120777),
    _e("dev/", DIR, mode=0o40755),
    _e("dev/console", mode=0o100755),
    _e("dev/pts/", DIR, mode=0o40755),
    _e("etc/", DIR, mode=0o40755),
    _e("etc/hostname", mode=0o100755),
    _e("etc/hosts", mode=0o100755),
    _e("etc/mtab", SYM, linkname="/proc/mounts", mode=0o120777),
    _e("etc/resolv.conf", mode=0o100755),
    _e("proc/", DIR, mode=0o40755),
    _e("usr/", DIR, mode=0o40755),
    _e("usr/lib/", DIR, mode=0o40755),
    _e("usr/lib/x", LNK, linkname="bin/a"),
]


def test_customer_ramdisk_applies_linuxkit_edits_in_linuxkit_order():
    data = _initrd(customer_entries(EXPORT, cmd=["/bin/hello.sh", "arg one"], env=["A=1", "B=two words"]))
    es = parse_cpio(data)
    names = [e["name"] for e in es]
    assert names == [
        "rootfs",  # tarPrefix
        "rootfs/bin/", "rootfs/bin/a", "rootfs/bin/b", "rootfs/bin/c",
        "rootfs/dev/", "rootfs/dev/pts/", "rootfs/etc/", "rootfs/etc/hosts", "rootfs/etc/mtab",
        "rootfs/etc/resolv.conf", "rootfs/proc/", "rootfs/usr/", "rootfs/usr/lib/", "rootfs/usr/lib/x",
        # touch entries not found in the export (replaced ones count as found: AWS's patch 0003)
        "rootfs/dev/shm", "rootfs/sys",
        # files: the parent directory, the fixed directories, cmd and env
        "rootfs", "rootfs/dev", "rootfs/run", "rootfs/sys", "rootfs/var", "rootfs/proc", "rootfs/tmp", "cmd", "env",
    ]
    by = {}
    for e in es:
        by.setdefault(e["name"], []).append(e)
    # hard links become relative symlinks; data is the target
    assert by["rootfs/bin/b"][0]["mode"] == 0o120644 and by["rootfs/bin/b"][0]["data"] == b"a"
    assert by["rootfs/usr/lib/x"][0]["data"] == b"../../bin/a"
    assert by["rootfs/bin/c"][0]["data"] == b"a" and by["rootfs/bin/a"][0]["data"] == b"data"
    # etc/hosts replaced: keeps the export's header, gets linuxkit's text and the fixed time; once
    (h1,) = by["rootfs/etc/hosts"]
    assert h1["data"].startswith(b"127.0.0.1       localhost\n") and h1["data"].endswith(b"ff02::2 ip6-allrouters\n")
    assert h1["mode"] == 0o100755 and h1["mtime"] == DEFAULT_MTIME and h1["size"] == 160
    # resolv.conf becomes a symlink to /run/resolvconf/resolv.conf (mode bits kept), once
    (r1,) = by["rootfs/etc/resolv.conf"]
    assert r1["data"] == b"/run/resolvconf/resolv.conf" and r1["mode"] == 0o120755
    # touched entries get the fixed time; others keep their own
    assert by["rootfs/dev/"][0]["mtime"] == DEFAULT_MTIME and by["rootfs/bin/"][0]["mtime"] == 1700000000
    assert by["rootfs/etc/mtab"][0]["mtime"] == DEFAULT_MTIME
    assert by["cmd"][0]["data"] == b"/bin/hello.sh\narg one\n" and by["cmd"][0]["mode"] == 0o100644
    assert by["env"][0]["data"] == b"A=1\nB=two words\n"
    assert [e["ino"] for e in es] == list(range(721, 721 + len(es)))


def test_touch_entries_are_created_in_sorted_order_when_the_export_has_none():
    es = parse_cpio(_initrd(customer_entries([], cmd=[], env=[])))
    names = [e["name"] for e in es]
    assert names[:10] == ["rootfs", "rootfs/dev", "rootfs/dev/pts", "rootfs/dev/shm", "rootfs/etc", "rootfs/etc/hosts",
                          "rootfs/etc/mtab", "rootfs/etc/resolv.conf", "rootfs/proc", "rootfs/sys"]
    assert es[-2]["data"] == b"" and es[-1]["data"] == b""


def test_boot_directory_and_unsupported_entries():
    es = parse_cpio(_initrd([_e("boot/kernel", data=b"k"), _e("bootx", data=b"b")]))
    assert [e["name"] for e in es] == ["bootx"]
    with pytest.raises(errors.RamdiskError) as ei:
        _initrd([TarEntry(name="s", type="7", mode=0o644)])
    assert ei.value.code is errors.ErrorCode.UNSUPPORTED_TAR_ENTRY


def test_devices_keep_their_numbers():
    es = parse_cpio(_initrd([TarEntry(name="null", type="3", mode=0o20666, devmajor=1, devminor=3)]))
    assert (es[0]["mode"], es[0]["rdevmajor"], es[0]["rdevminor"]) == (0o20666, 1, 3)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="/"), min_size=1, max_size=40)


@settings(max_examples=60)
@given(st.lists(st.tuples(_names, st.sampled_from([REG, DIR, SYM]), st.binary(max_size=300), st.integers(0, 0o7777),
                          st.integers(0, 2**32 - 1)), max_size=8))
def test_any_entries_round_trip_through_the_oracle(items):
    entries = []
    for name, t, data, mode, mtime in items:
        if t == REG:
            entries.append(TarEntry(name=name, type=REG, mode=mode, mtime=mtime, size=len(data), read=bytes_reader(data)))
        elif t == DIR:
            entries.append(TarEntry(name=name + "/", type=DIR, mode=mode, mtime=mtime))
        else:
            entries.append(TarEntry(name=name, type=SYM, mode=mode, mtime=mtime, linkname=data.hex()))
    out = parse_cpio(_initrd(entries))
    assert [e["name"] for e in out] == [e.name for e in entries]
    for got, want in zip(out, entries):
        assert got["mode"] & 0o7777 == want.mode and got["mtime"] == want.mtime
        if want.type == REG:
            assert got["data"] == b"".join(want.chunks()) and got["mode"] >> 12 == 0o10
        elif want.type == SYM:
            assert got["data"] == want.linkname.encode() and got["mode"] >> 12 == 0o12
        else:
            assert got["nlink"] == 2 and got["size"] == 0
