"""Boot an EIF in a QEMU microVM and relay its framed link to a TCP port (spec 9.11).

    vault-eif run FILE.eif [--port 5000] [--memory 1024] [--cpus 2] [--attempts 3]
    python -m enclave_build.cli run FILE.eif ...                 # the same, from a checkout

What a Nitro hypervisor does, done here:

1. read the EIF once: check its CRC, compute PCR0/1/2(/8) from its bytes, write the kernel out and
   the ramdisks concatenated (Linux reads concatenated cpio archives as one initramfs, which is how
   Nitro loads ramdisk 0 then ramdisk 1);
2. boot kernel + cmdline + ramdisks under ``qemu-system-x86_64 -M microvm`` (TCG by default: no
   KVM needed);
3. be the enclave's NSM: attestation documents are made here, outside the VM, with those PCRs and
   a development PKI made for this run, and handed over the virtio-serial port
   ``org.nitro-vault.nsm`` (``reference.enclave.nsm.link``). The guest can ask, never choose its PCRs;
4. relay the enclave's link, a virtio-serial port named ``org.nitro-vault.link`` that stands in
   for vsock, to ``tcp:HOST:PORT`` for ``vault-reference host --enclave tcp:HOST:PORT``.

The link is one byte stream, so the relay keeps it in step: it reads each request frame whole from
a TCP client before writing it to the port, sends one at a time, and reads each reply whole even
when the client has gone (the reply is then dropped). A client can never leave half a frame on the
port, and any number of clients may connect.

On stdout, one JSON line per event: ``{"event": "ready", ...}`` once the enclave answers its first
request (with the seconds from QEMU's start), ``{"event": "exited", ...}`` when the VM ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import importlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .. import errors, sibling
from ..describe import inspect_eif
from ..eif import SectionDataReceived, SectionType

framing = importlib.import_module(sibling("reference.framing"))
nsm_link = importlib.import_module(sibling("reference.enclave.nsm.link"))
simulated_nsm = importlib.import_module(sibling("reference.enclave.nsm.simulated"))

LINK_PORT_NAME = "org.nitro-vault.link"
NSM_PORT_NAME = nsm_link.PORT_NAME
DEFAULT_MEMORY_MIB = 1024  # the customer ramdisk is unpacked into RAM, then Python runs beside it
DEFAULT_CPUS = 2
DEFAULT_BOOT_TIMEOUT = 120.0  # per attempt: TCG on a busy 2-core machine (the benchmark has the real figure)
DEFAULT_ATTEMPTS = 3
QEMU = "qemu-system-x86_64"


class LauncherError(errors.EifBuildError):
    """The microVM could not be started or stopped answering."""

    code = errors.ErrorCode.LOCAL_LAUNCH


@dataclasses.dataclass(frozen=True)
class BootParts:
    kernel: Path
    cmdline: str
    initrd: Path
    measurements: dict[str, Any]  # nitro-cli describe-eif's Measurements object


def extract_boot_parts(eif: str | os.PathLike[str], workdir: Path) -> BootParts:
    """One pass over the EIF: its PCRs (as describe computes them), its kernel, its ramdisks."""
    kernel, initrd = workdir / "kernel", workdir / "initrd"
    with open(eif, "rb") as f, open(kernel, "wb") as k, open(initrd, "wb") as r:
        def write(ev: SectionDataReceived) -> None:
            (k if ev.type is SectionType.KERNEL else r).write(ev.data)

        info = inspect_eif(f, on_data=write)
    if not info.crc_ok:
        raise LauncherError(f"{eif}: CRC mismatch, the file is damaged")
    return BootParts(kernel=kernel, cmdline=info.cmdline.decode(), initrd=initrd,
                     measurements=info.measurements.to_json_obj())


def qemu_command(parts: BootParts, *, link_socket: Path, nsm_socket: Path, console_log: Path,
                 memory_mib: int = DEFAULT_MEMORY_MIB, cpus: int = DEFAULT_CPUS, accel: str = "tcg",
                 qemu: str = QEMU) -> list[str]:
    """The QEMU command line: a microVM with a serial console and two virtio-serial ports (link, NSM)."""
    return [
        qemu, "-M", "microvm,pit=on,pic=on,rtc=on,isa-serial=on", "-accel", accel, "-cpu", "max",
        "-smp", str(cpus), "-m", str(memory_mib),
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-kernel", str(parts.kernel), "-append", parts.cmdline, "-initrd", str(parts.initrd),
        "-serial", f"file:{console_log}",
        "-device", "virtio-serial-device",
        "-chardev", f"socket,id=link,path={link_socket},server=on,wait=off",
        "-device", f"virtserialport,chardev=link,name={LINK_PORT_NAME}",
        "-chardev", f"socket,id=nsm,path={nsm_socket},server=on,wait=off",
        "-device", f"virtserialport,chardev=nsm,name={NSM_PORT_NAME}",
    ]


def _die_with_parent() -> None:
    """In the QEMU child: get SIGKILL when the launcher dies, so no VM outlives it."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Link:
    """The host side of the virtio-serial link: one request at a time, each reply read whole."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self._lock = asyncio.Lock()

    async def exchange(self, kind: str, body: bytes) -> tuple[int, bytes]:
        # Shielded: a client that goes away mid-request must not leave the port out of step.
        return await asyncio.shield(self._exchange(kind, body))

    async def _exchange(self, kind: str, body: bytes) -> tuple[int, bytes]:
        async with self._lock:
            self.writer.write(framing.encode_request(kind, body))
            await self.writer.drain()
            return await framing.read_reply(self.reader)


def host_nsm(measurements: dict[str, Any], state_dir: Path):
    """The NSM the launcher holds: the simulated NSM's documents and development PKI, with the PCRs
    computed from the EIF (PCR8 too when the EIF is signed), made fresh for each run."""
    pcrs = {int(name[3:]): bytes.fromhex(value) for name, value in measurements.items()
            if name.startswith("PCR")}
    return simulated_nsm.SimulatedNsm(state_dir, pcrs=pcrs)


async def serve_nsm(link: "Link", nsm) -> None:
    """Answer the guest's NSM requests on its port until the VM goes (spec 9.11 item 7)."""
    reader, writer = link.reader, link.writer
    try:
        while True:
            kind, body = await framing.read_request(reader)
            status, reply = nsm_link.answer(nsm, kind, body)
            writer.write(framing.encode_reply(status, reply))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, framing.FramingError, UnicodeDecodeError):
        return  # the VM is gone, or its NSM client broke the framing: it gets no more documents
    finally:
        writer.close()


async def _relay_client(link: "Link | _LinkHolder", reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                kind, body = await framing.read_request(reader, frame_timeout=10.0)
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError,
                    framing.FramingError, UnicodeDecodeError):
                return  # the client left or spoke out of turn: only its connection ends
            try:
                status, reply = await link.exchange(kind, body)
            except (ConnectionError, asyncio.IncompleteReadError):
                return  # the VM is down or between boot attempts: the host front answers 503
            writer.write(framing.encode_reply(status, reply))
            await writer.drain()
    except ConnectionError:
        return
    finally:
        writer.close()


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _console_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# What a boot that will never answer prints. Under TCG on a busy host, the kernel sometimes cannot
# calibrate the TSC against the PIT and then stalls, and QEMU 7's TCG (not 10's) corrupted memory
# now and then; such a boot is abandoned and the VM started again (``attempts``).
BOOT_FAILURES = ("could not calculate TSC khz", "Kernel panic", "Oops:")


class BootFailed(LauncherError):
    """One boot attempt failed; another may succeed."""


class _LinkHolder:
    """The current boot's link. The relay's TCP port is bound before the first boot, so a client may
    send before the enclave is up: its request waits for the first answer of a boot, then goes."""

    def __init__(self) -> None:
        self.link: Link | None = None
        self._up = asyncio.Event()

    def set(self, link: Link | None, *, up: bool = False) -> None:
        self.link = link
        self._up.set() if up else self._up.clear()

    async def exchange(self, kind: str, body: bytes) -> tuple[int, bytes]:
        await self._up.wait()
        assert self.link is not None
        return await self.link.exchange(kind, body)


async def run(eif: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 5000,
              memory_mib: int = DEFAULT_MEMORY_MIB, cpus: int = DEFAULT_CPUS, accel: str = "tcg",
              boot_timeout: float = DEFAULT_BOOT_TIMEOUT, attempts: int = DEFAULT_ATTEMPTS,
              workdir: str | os.PathLike[str] | None = None, qemu: str = QEMU) -> int:
    """Boot ``eif`` and relay its link until the VM ends or the launcher is stopped; QEMU's status."""
    if shutil.which(qemu) is None:
        raise LauncherError(f"{qemu} is not installed (Debian: qemu-system-x86)")
    with tempfile.TemporaryDirectory(prefix="local-enclave-", dir=workdir) as tmp:
        work = Path(tmp)
        parts = extract_boot_parts(eif, work)
        nsm = host_nsm(parts.measurements, work / "nsm")
        holder = _LinkHolder()
        try:
            server = await asyncio.start_server(lambda r, w: _relay_client(holder, r, w), host, port)
        except OSError as e:
            raise LauncherError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
        try:
            for attempt in range(1, attempts + 1):
                link_socket, nsm_socket = work / f"link-{attempt}.sock", work / f"nsm-{attempt}.sock"
                console_log = work / f"console-{attempt}.log"
                command = qemu_command(parts, link_socket=link_socket, nsm_socket=nsm_socket, console_log=console_log,
                                       memory_mib=memory_mib, cpus=cpus, accel=accel, qemu=qemu)
                started = time.monotonic()
                vm = await asyncio.create_subprocess_exec(*command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                          stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
                nsm_service = None
                try:
                    try:
                        link = await _connect_link(link_socket, vm)
                        nsm_service = asyncio.ensure_future(serve_nsm(await _connect_link(nsm_socket, vm), nsm))
                        await _wait_first_answer(link, vm, boot_timeout, console_log)
                    except BootFailed as failure:
                        _emit("boot-failed", attempt=attempt, reason=str(failure),
                              console=_console_tail(console_log))
                        if attempt == attempts:
                            raise LauncherError(f"no boot answered in {attempts} attempts; last: {failure}") from None
                        continue
                    holder.set(link, up=True)
                    _emit("ready", listen=f"tcp:{host}:{port}", bootSeconds=round(time.monotonic() - started, 2),
                          attempt=attempt, measurements=parts.measurements, consoleLog=str(console_log),
                          nsmRootPem=nsm.root_pem().decode())
                    status = await _wait_stopped(vm)
                    _emit("exited", status=status, console=_console_tail(console_log))
                    return status
                finally:  # whatever ends this attempt (a failed boot, an error, cancellation), the VM goes
                    holder.set(None)
                    if nsm_service is not None:
                        nsm_service.cancel()
                    if vm.returncode is None:
                        vm.kill()
                    await asyncio.shield(vm.wait())
            raise AssertionError("unreachable")
        finally:
            server.close()


async def _connect_link(path: Path, vm: asyncio.subprocess.Process) -> Link:
    for _ in range(200):
        if vm.returncode is not None:
            output = (await vm.stdout.read()).decode(errors="replace")
            raise LauncherError(f"QEMU exited with status {vm.returncode}: {output.strip()[-2000:]}")
        if path.exists():
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_unix_connection(str(path), limit=framing.MAX_FRAME + 64)
                return Link(reader, writer)
        await asyncio.sleep(0.05)
    raise LauncherError("QEMU did not open the link's socket within 10 s")


def _boot_failure(console: Path) -> str | None:
    try:
        text = console.read_text(errors="replace")
    except OSError:
        return None
    return next((marker for marker in BOOT_FAILURES if marker in text), None)


async def _wait_first_answer(link: Link, vm: asyncio.subprocess.Process, timeout: float, console: Path) -> None:
    """The first request is queued on the port until the enclave opens it; its answer means ready.
    A VM that ends first, or prints a failed boot, is a :class:`BootFailed`."""
    probe = asyncio.ensure_future(link.exchange("public-key", b""))
    deadline = time.monotonic() + timeout
    try:
        while not probe.done():
            if vm.returncode is not None:
                raise BootFailed(f"the VM ended with status {vm.returncode} before answering")
            marker = _boot_failure(console)
            if marker is not None:
                raise BootFailed(f"the console shows a failed boot ({marker!r})")
            if time.monotonic() > deadline:
                raise BootFailed(f"no answer within {timeout:.0f} s")
            await asyncio.wait({probe}, timeout=0.25)
        if probe.exception() is not None:
            raise BootFailed(f"the link broke before the first answer: {probe.exception()!r}")
        status, body = probe.result()
        if status != 200:
            raise LauncherError(f"the enclave's first answer was {status}: {body[:200]!r}")
    finally:
        probe.cancel()


async def _wait_stopped(vm: asyncio.subprocess.Process) -> int:
    """Until the VM ends, or SIGINT/SIGTERM stops the launcher (the VM is then killed)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ended = asyncio.ensure_future(vm.wait())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({ended, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if vm.returncode is None:
        vm.kill()
    return await vm.wait()


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("eif", help="the EIF to boot")
    p.add_argument("--host", default="127.0.0.1", help="address of the link's TCP port (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5000, help="the link's TCP port (default 5000)")
    p.add_argument("--memory", type=int, default=DEFAULT_MEMORY_MIB, help=f"MiB (default {DEFAULT_MEMORY_MIB})")
    p.add_argument("--cpus", type=int, default=DEFAULT_CPUS, help=f"vCPUs (default {DEFAULT_CPUS})")
    p.add_argument("--accel", default="tcg", help="QEMU accelerator (default tcg; kvm where nesting works)")
    p.add_argument("--boot-timeout", type=float, default=DEFAULT_BOOT_TIMEOUT,
                   help=f"seconds to the first answer, per attempt (default {DEFAULT_BOOT_TIMEOUT:.0f})")
    p.add_argument("--attempts", type=int, default=DEFAULT_ATTEMPTS,
                   help=f"boots to try when one fails under emulation (default {DEFAULT_ATTEMPTS})")


def run_from_args(a: argparse.Namespace) -> int:
    if not 1 <= a.port <= 65535:
        raise LauncherError(f"--port {a.port}: not a TCP port")
    for name in ("memory", "cpus", "attempts"):
        if getattr(a, name) < 1:
            raise LauncherError(f"--{name} {getattr(a, name)}: must be at least 1")
    return asyncio.run(run(a.eif, host=a.host, port=a.port, memory_mib=a.memory, cpus=a.cpus, accel=a.accel,
                           boot_timeout=a.boot_timeout, attempts=a.attempts))
