"""The local enclave flavour's parts without QEMU (spec 9.11): ramdisk 0 with modules, the boot
blobs from a kernel package, the launcher's EIF reading, boot-failure handling and link relay.

The boot itself (QEMU, the real kernel) is in ``test_local_enclave.py``.
"""

from __future__ import annotations

import asyncio
import io
import json
import lzma
import os
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import http.server
from pathlib import Path

import pytest

from enclave_build import errors, inspect_eif, metadata
from enclave_build.blobs import Blobs
from enclave_build.build import Part, assemble_eif, write_bootstrap_ramdisk
from enclave_build.microvm import blobs as local_blobs
from enclave_build.microvm import launcher
from reference import framing

from .eif_oracle import parse_cpio

RELEASE = "6.12.95+test-cloud-amd64"


def _cpio_names(data: bytes) -> list[str]:
    return [entry["name"] for entry in parse_cpio(data)]


# --- ramdisk 0 ----------------------------------------------------------------------------------


def test_ramdisk_0_lists_the_extra_modules_after_nsm_ko_and_measures_them(blobs_dir: Path):
    plain = io.BytesIO()
    write_bootstrap_ramdisk(Blobs.from_dir(blobs_dir), plain)
    (blobs_dir / "modules").mkdir()
    (blobs_dir / "modules" / "virtio_mmio.ko").write_bytes(b"\x7fELF-mmio")
    (blobs_dir / "modules" / "another.ko").write_bytes(b"\x7fELF-another")
    with_modules = io.BytesIO()
    blobs = Blobs.from_dir(blobs_dir)
    assert [m.name for m in blobs.modules] == ["another.ko", "virtio_mmio.ko"]  # the init's order
    write_bootstrap_ramdisk(blobs, with_modules)
    assert _cpio_names(plain.getvalue()) == ["dev", "init", "nsm.ko"]
    assert _cpio_names(with_modules.getvalue()) == [
        "dev", "init", "nsm.ko", "modules", "modules/another.ko", "modules/virtio_mmio.ko"]
    # one byte of a module changes ramdisk 0, hence PCR1
    (blobs_dir / "modules" / "virtio_mmio.ko").write_bytes(b"\x7fELF-mmiO")
    changed = io.BytesIO()
    write_bootstrap_ramdisk(Blobs.from_dir(blobs_dir), changed)
    assert changed.getvalue() != with_modules.getvalue()


# --- blobs from a kernel package -----------------------------------------------------------------


def _module(name: str, release: str = RELEASE) -> bytes:
    return b"\x7fELF" + name.encode() + b"\0vermagic=" + release.encode() + b" SMP preempt mod_unload modversions\0"


def _kernel_deb(tmp: Path, *, release: str = RELEASE, module_release: str = RELEASE, drop: str | None = None) -> Path:
    """A package shaped like Debian's linux-image (vmlinuz, config, .ko.xz), built by dpkg-deb."""
    root = tmp / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: linux-image-{release}\nVersion: 1\nArchitecture: amd64\nMaintainer: t <t@example.org>\n"
        "Description: test kernel\n")
    (root / "boot").mkdir()
    (root / "boot" / f"vmlinuz-{release}").write_bytes(b"MZ" + b"kernel" * 100)
    (root / "boot" / f"config-{release}").write_text(f"# Linux/x86 {release} Kernel Configuration\nCONFIG_NSM=m\n")
    mods = root / "lib" / "modules" / release / "kernel" / "drivers"
    for name, sub in (("nsm", "misc"), ("virtio_mmio", "virtio"), ("other", "firmware")):
        if name == drop:
            continue
        (mods / sub).mkdir(parents=True, exist_ok=True)
        (mods / sub / f"{name}.ko.xz").write_bytes(lzma.compress(_module(name, module_release),
                                                                  format=lzma.FORMAT_XZ))
    deb = tmp / "kernel.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(deb)], check=True,
                   capture_output=True)
    return deb


needs_dpkg_and_cc = pytest.mark.skipif(
    not (os.path.exists("/usr/bin/dpkg-deb") and os.path.exists("/usr/bin/gcc")), reason="dpkg-deb and gcc")


def _has_interpreter(elf: bytes) -> bool:
    """Whether an ELF64 little-endian file has a PT_INTERP program header (a dynamic loader)."""
    import struct

    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    return any(struct.unpack_from("<I", elf, phoff + i * phentsize)[0] == 3 for i in range(phnum))


@needs_dpkg_and_cc
def test_blobs_from_a_kernel_package(tmp_path: Path):
    out = tmp_path / "blobs"
    blobs = local_blobs.build_blobs(out, deb=_kernel_deb(tmp_path))
    assert blobs.kernel.read_bytes() == b"MZ" + b"kernel" * 100
    assert blobs.nsm_ko.read_bytes() == _module("nsm")  # decompressed
    assert [m.name for m in blobs.modules] == ["virtio_mmio.ko"]  # the lock's modules, not every one
    assert blobs.cmdline == local_blobs.CMDLINE.encode()
    assert blobs.init.read_bytes()[:4] == b"\x7fELF"
    manifest = json.loads((out / "blobs.json").read_text())
    assert manifest["kernelRelease"] == RELEASE and manifest["pinned"] is False
    assert set(manifest["blobs"]) == {"bzImage", "init", "nsm.ko", "modules/virtio_mmio.ko"}
    # the init is a static binary: ramdisk 0 has no loader for it to ask for
    assert not _has_interpreter(blobs.init.read_bytes())


@needs_dpkg_and_cc
def test_the_init_compiles_to_the_same_bytes_twice(tmp_path: Path):
    local_blobs.compile_init(tmp_path / "a")
    local_blobs.compile_init(tmp_path / "b")
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


@needs_dpkg_and_cc
def test_a_module_built_for_another_kernel_is_refused(tmp_path: Path):
    deb = _kernel_deb(tmp_path, module_release="6.1.0-other-amd64")
    with pytest.raises(local_blobs.LocalBlobsError, match="built for another kernel"):
        local_blobs.build_blobs(tmp_path / "blobs", deb=deb)


@needs_dpkg_and_cc
def test_a_package_without_a_needed_module_is_refused(tmp_path: Path):
    with pytest.raises(local_blobs.LocalBlobsError, match="lacks virtio_mmio"):
        local_blobs.build_blobs(tmp_path / "blobs", deb=_kernel_deb(tmp_path, drop="virtio_mmio"))


def test_a_download_that_does_not_match_the_pin_is_refused(tmp_path: Path):
    """The pinned package is fetched by its pool path; bytes with another SHA-256 are never used."""
    pool = tmp_path / "mirror" / Path(local_blobs.LOCK["pool_path"]).parent
    pool.mkdir(parents=True)
    (pool / Path(local_blobs.LOCK["pool_path"]).name).write_bytes(b"not the kernel package")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path / "mirror"), **kw)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cache = tmp_path / "cache"
        cache.mkdir()
        with pytest.raises(local_blobs.LocalBlobsError, match="does not match its pin"):
            local_blobs.download_pinned(cache, mirror=f"http://127.0.0.1:{server.server_address[1]}")
        assert list(cache.iterdir()) == []  # nothing half-downloaded is left to be picked up later
    finally:
        server.shutdown()


# --- the launcher: reading the EIF ---------------------------------------------------------------


def _tiny_eif(tmp: Path) -> tuple[Path, bytes, bytes, bytes]:
    kernel, r0, r1 = b"MZ-kernel" * 1000, b"ramdisk-zero" * 333, b"ramdisk-one" * 4444
    for name, data in (("k", kernel), ("r0", r0), ("r1", r1)):
        (tmp / name).write_bytes(data)
    eif = tmp / "tiny.eif"
    with open(eif, "wb") as out:
        md = metadata.encode_metadata(image_name="tiny", image_version="1", docker_info={},
                                      build_info=metadata.BuildInfo(build_time="2026-01-01T00:00:00Z",
                                                                    operating_system="Linux", kernel_version="6.12"))
        assemble_eif(out, kernel=Part(tmp / "k"), cmdline=b"console=ttyS0 reboot=t", metadata_json=md,
                     ramdisks=[Part(tmp / "r0"), Part(tmp / "r1")])
    return eif, kernel, r0, r1


def test_the_launcher_boots_the_eifs_own_kernel_and_ramdisks_with_describes_pcrs(tmp_path: Path):
    eif, kernel, r0, r1 = _tiny_eif(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    parts = launcher.extract_boot_parts(eif, work)
    assert parts.kernel.read_bytes() == kernel
    assert parts.initrd.read_bytes() == r0 + r1  # ramdisk 0 then 1, as Nitro loads them
    assert parts.cmdline == "console=ttyS0 reboot=t"
    with open(eif, "rb") as f:
        assert parts.measurements == inspect_eif(f).measurements.to_json_obj()
    command = launcher.qemu_command(parts, link_socket=work / "l.sock", nsm_socket=work / "n.sock",
                                    kms_socket=work / "k.sock", console_log=work / "c.log")
    assert command[command.index("-kernel") + 1] == str(parts.kernel)
    assert command[command.index("-initrd") + 1] == str(parts.initrd)
    assert command[command.index("-append") + 1] == "console=ttyS0 reboot=t"
    assert f"virtserialport,chardev=link,name={launcher.LINK_PORT_NAME}" in command
    assert f"virtserialport,chardev=nsm,name={launcher.NSM_PORT_NAME}" in command
    assert f"virtserialport,chardev=kms,name={launcher.KMS_PORT_NAME}" in command
    assert "-no-reboot" in command  # the guest's reset is the VM's end
    # the local image asks for its documents on that port, and listens on the link
    dockerfile = (Path(__file__).parents[2] / "enclave_build/image/local/Dockerfile").read_text()
    assert f'"--nsm", "serial:{launcher.NSM_PORT_NAME}"' in dockerfile
    assert f'"--listen", "serial:{launcher.LINK_PORT_NAME}"' in dockerfile
    assert f'"--kms-link", "serial:{launcher.KMS_PORT_NAME}"' in dockerfile


def test_a_damaged_eif_is_not_booted(tmp_path: Path):
    eif, *_ = _tiny_eif(tmp_path)
    data = bytearray(eif.read_bytes())
    data[-10] ^= 1  # inside ramdisk 1: the CRC no longer matches
    eif.write_bytes(bytes(data))
    with pytest.raises(errors.EifBuildError, match="crc"):
        launcher.extract_boot_parts(eif, tmp_path)


# --- the launcher with a stand-in for QEMU -------------------------------------------------------

# A fake qemu-system-x86_64: reads the -serial file: and -chardev socket paths from its arguments.
# FAKE_QEMU=panic writes a kernel panic to the console and stays up (the launcher must give up on
# that boot); FAKE_QEMU=serve answers framed requests on the link like the enclave (reply body:
# the request's kind and body echoed, one reply per request, in order).
FAKE_QEMU = textwrap.dedent('''\
    #!{python}
    import os, socket, struct, sys, time
    args = sys.argv[1:]
    console = args[args.index("-serial") + 1].removeprefix("file:")
    servers = []  # every chardev socket (link, then NSM); the link is served
    for i, arg in enumerate(args):
        if arg == "-chardev":
            path = dict(p.split("=", 1) for p in args[i + 1].split(",")[1:] if "=" in p)["path"]
            servers.append(socket.socket(socket.AF_UNIX))
            servers[-1].bind(path)
            servers[-1].listen(1)
    server = servers[0]
    mode = os.environ["FAKE_QEMU"]
    with open(console, "w") as c:
        c.write("Run /init as init process\\n")
        if mode == "panic":
            c.write("Kernel panic - not syncing: Attempted to kill init!\\n")
    if mode == "panic":
        time.sleep(60)
        sys.exit(0)
    conn, _ = server.accept()
    f = conn.makefile("rwb")
    while True:
        head = f.read(2)
        if len(head) < 2:
            sys.exit(0)
        kind = f.read(struct.unpack(">H", head)[0])
        body = f.read(struct.unpack(">I", f.read(4))[0])
        if kind == b"slow":
            time.sleep(1.0)
        reply = kind + b":" + body
        f.write(struct.pack(">HI", 200, len(reply)) + reply)
        f.flush()
    ''')


@pytest.fixture
def fake_qemu(tmp_path: Path) -> Path:
    path = tmp_path / "fake-qemu"
    path.write_text(FAKE_QEMU.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_boot_that_panics_is_tried_again_then_given_up(tmp_path, fake_qemu, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_QEMU", "panic")
    eif, *_ = _tiny_eif(tmp_path)
    with pytest.raises(launcher.LauncherError, match="no boot answered in 2 attempts"):
        asyncio.run(launcher.run(eif, port=_free_port(), attempts=2, boot_timeout=20, qemu=str(fake_qemu),
                                 workdir=tmp_path))
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["event"], e["attempt"]) for e in events] == [("boot-failed", 1), ("boot-failed", 2)]
    assert all("Kernel panic" in e["reason"] and "Kernel panic" in e["console"] for e in events)


def test_the_relay_keeps_the_link_in_step_when_a_client_leaves_mid_request(tmp_path, fake_qemu, monkeypatch):
    """Client A sends a slow request and hangs up before its answer; client B's request, sent
    meanwhile, gets B's answer (A's is read whole and dropped, never handed to B)."""
    monkeypatch.setenv("FAKE_QEMU", "serve")
    eif, *_ = _tiny_eif(tmp_path)
    port = _free_port()

    async def scenario():
        run = asyncio.ensure_future(launcher.run(eif, port=port, qemu=str(fake_qemu), workdir=tmp_path))
        # connected before the enclave is up: the request waits for the boot, then is answered
        for _ in range(200):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.05)
        writer.write(framing.encode_request("public-key", b""))
        assert await framing.read_reply(reader) == (200, b"public-key:")
        # a client that sends half a frame and leaves puts nothing on the link
        _, half = await asyncio.open_connection("127.0.0.1", port)
        half.write(framing.encode_request("envelope", b"x" * 100)[:50])
        await half.drain()
        half.close()
        # A: a slow request, then gone
        _, a = await asyncio.open_connection("127.0.0.1", port)
        a.write(framing.encode_request("slow", b"A"))
        await a.drain()
        await asyncio.sleep(0.2)
        a.close()
        # B, on the first connection
        writer.write(framing.encode_request("envelope", b"B"))
        assert await asyncio.wait_for(framing.read_reply(reader), 10) == (200, b"envelope:B")
        writer.write(framing.encode_request("envelope", b"C"))
        assert await asyncio.wait_for(framing.read_reply(reader), 10) == (200, b"envelope:C")
        writer.close()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(scenario())


def test_a_busy_port_is_refused_before_any_vm_starts(tmp_path, fake_qemu, monkeypatch):
    monkeypatch.setenv("FAKE_QEMU", "serve")
    eif, *_ = _tiny_eif(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        with pytest.raises(launcher.LauncherError, match="cannot listen"):
            asyncio.run(launcher.run(eif, port=busy.getsockname()[1], qemu=str(fake_qemu), workdir=tmp_path))
    assert not list(tmp_path.glob("local-enclave-*/console-*.log"))


def test_vault_eif_run_usage_errors_are_one_line(tmp_path):
    eif, *_ = _tiny_eif(tmp_path)
    for argv, message in ((["--port", "0"], "--port 0: not a TCP port"), (["--attempts", "0"], "--attempts 0"),
                          (["--memory", "0"], "--memory 0")):
        proc = subprocess.run([sys.executable, "-m", "enclave_build.cli", "run", str(eif), *argv],
                              capture_output=True, text=True, cwd=Path(__file__).parents[2])
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr
        assert errors.ErrorCode.LOCAL_LAUNCH.value in proc.stderr
