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
4. be the enclave's way to KMS, as the vsock-proxy is on AWS: the mocked KMS runs here, trusting
   this run's NSM root, with a key whose policy releases only to the EIF's PCR0. The enclave's
   requests come over the port ``org.nitro-vault.kms`` (``reference.enclave.kms_link``);
5. relay the enclave's link, a virtio-serial port named ``org.nitro-vault.link`` that stands in
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
import functools
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from .. import errors, sibling
from ..describe import inspect_eif
from ..eif import SectionDataReceived, SectionType

framing = importlib.import_module(sibling("reference.framing"))
nsm_link = importlib.import_module(sibling("reference.enclave.nsm.link"))
simulated_nsm = importlib.import_module(sibling("reference.enclave.nsm.simulated"))
kms_link = importlib.import_module(sibling("reference.enclave.kms_link"))

LINK_PORT_NAME = "org.nitro-vault.link"
NSM_PORT_NAME = nsm_link.PORT_NAME
KMS_PORT_NAME = kms_link.PORT_NAME
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


def qemu_command(parts: BootParts, *, link_socket: Path, nsm_socket: Path, kms_socket: Path, console_log: Path,
                 memory_mib: int = DEFAULT_MEMORY_MIB, cpus: int = DEFAULT_CPUS, accel: str = "tcg",
                 qemu: str = QEMU) -> list[str]:
    """The QEMU command line: a microVM with a serial console and three virtio-serial ports (link, NSM, KMS)."""
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
        "-chardev", f"socket,id=kms,path={kms_socket},server=on,wait=off",
        "-device", f"virtserialport,chardev=kms,name={KMS_PORT_NAME}",
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
        task = asyncio.ensure_future(self._exchange(kind, body))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # a failure nobody awaits is not logged
        return await asyncio.shield(task)

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


async def serve_port(link: "Link", answer: Callable[[str, bytes], tuple[int, bytes]]) -> None:
    """Answer the guest's requests on one of the launcher's ports (its NSM, its KMS proxy) until the
    VM goes. ``answer`` may block (a KMS call): it runs in a thread, one request at a time."""
    try:
        while True:
            kind, body = await framing.read_request(link.reader)
            status, reply = await asyncio.to_thread(answer, kind, body)
            link.writer.write(framing.encode_reply(status, reply))
            await link.writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, framing.FramingError, UnicodeDecodeError):
        return  # the VM is gone, or the guest broke the framing: it gets no more answers on this port
    finally:
        link.writer.close()


class HostKms:
    """The mocked KMS beside the launcher and the proxy to it (spec 9.11 item 8): its state is the
    launcher's, it pins this run's NSM root, and its key releases only to the EIF's PCR0 (the
    embedded default's locked policy). Started on the first request, so a VM that never asks
    costs nothing."""

    def __init__(self, state: Path, root_pem: bytes, pcr0_hex: str):
        self._state, self._root, self._pcr0 = state, root_pem, pcr0_hex
        self._embedded = None
        self._client = None
        self.key_arn: str | None = None

    def _start(self) -> None:
        embedded_kms = importlib.import_module(sibling("reference.embedded_kms"))
        kms_client = importlib.import_module(sibling("reference.enclave.kms_client"))
        self._embedded = embedded_kms.EmbeddedKms(self._state, self._root).start()
        self._client = kms_client.Boto3KmsClient(region=embedded_kms.REGION, endpoint_url=self._embedded.url,
                                                 access_key_id="vault-enclave-dev", secret_access_key="mock")
        self.key_arn = self._embedded.key_arn(self._client, self._pcr0)

    def answer(self, kind: str, body: bytes) -> tuple[int, bytes]:
        if self._embedded is None:
            try:
                self._start()
            except Exception as error:  # the mock did not start: the guest hears KMS is unreachable
                self.stop()
                self._embedded = None
                return 502, f"the launcher's KMS did not start: {error}".encode()
        return kms_link.answer(self._client, self.key_arn, kind, body)

    def stop(self) -> None:
        if self._embedded is not None:
            self._embedded.stop()


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
              kms_pcr0: str | None = None, workdir: str | os.PathLike[str] | None = None, qemu: str = QEMU) -> int:
    """Boot ``eif`` and relay its link until the VM ends or the launcher is stopped; QEMU's status."""
    if shutil.which(qemu) is None:
        raise LauncherError(f"{qemu} is not installed (Debian: qemu-system-x86)")
    with tempfile.TemporaryDirectory(prefix="local-enclave-", dir=workdir) as tmp:
        work = Path(tmp)
        parts = extract_boot_parts(eif, work)
        nsm = host_nsm(parts.measurements, work / "nsm")
        # The key policy's PCR0: the operator's expectation when given, else the EIF's own.
        kms = HostKms(work / "kms", nsm.root_pem(), kms_pcr0 or parts.measurements["PCR0"])
        holder = _LinkHolder()
        try:
            server = await asyncio.start_server(lambda r, w: _relay_client(holder, r, w), host, port)
        except OSError as e:
            raise LauncherError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
        try:
            for attempt in range(1, attempts + 1):
                link_socket, nsm_socket = work / f"link-{attempt}.sock", work / f"nsm-{attempt}.sock"
                kms_socket, console_log = work / f"kms-{attempt}.sock", work / f"console-{attempt}.log"
                command = qemu_command(parts, link_socket=link_socket, nsm_socket=nsm_socket, kms_socket=kms_socket,
                                       console_log=console_log, memory_mib=memory_mib, cpus=cpus, accel=accel,
                                       qemu=qemu)
                started = time.monotonic()
                vm = await asyncio.create_subprocess_exec(*command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                          stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
                services: list[asyncio.Future] = []
                try:
                    try:
                        link = await _connect_link(link_socket, vm)
                        for socket_path, answer in ((nsm_socket, functools.partial(nsm_link.answer, nsm)),
                                                    (kms_socket, kms.answer)):
                            port_link = await _connect_link(socket_path, vm)
                            services.append(asyncio.ensure_future(serve_port(port_link, answer)))
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
                          nsmRootPem=nsm.root_pem().decode(), kmsKeyArn=kms.key_arn)
                    status = await _wait_stopped(vm)
                    _emit("exited", status=status, console=_console_tail(console_log))
                    return status
                finally:  # whatever ends this attempt (a failed boot, an error, cancellation), the VM goes
                    holder.set(None)
                    for service in services:
                        service.cancel()
                    if vm.returncode is None:
                        vm.kill()
                    await asyncio.shield(vm.wait())
            raise AssertionError("unreachable")
        finally:
            server.close()
            kms.stop()


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

    def command_ended() -> None:
        # The image's command ran and exited (a KMS denial, bad configuration): booting the same EIF
        # again would end the same way, so this is not retried.
        tail = _console_tail(console)
        if "enclave-init:" in tail and (" exited with status " in tail or " ended by signal " in tail):
            raise LauncherError(f"the enclave's command ended before answering; console:\n{tail}")

    try:
        while not probe.done():
            if vm.returncode is not None:
                command_ended()
                raise BootFailed(f"the VM ended with status {vm.returncode} before answering")
            marker = _boot_failure(console)
            if marker is not None:
                raise BootFailed(f"the console shows a failed boot ({marker!r})")
            if time.monotonic() > deadline:
                raise BootFailed(f"no answer within {timeout:.0f} s")
            await asyncio.wait({probe}, timeout=0.25)
        if probe.exception() is not None:
            await asyncio.sleep(0.5)  # the console's last lines, written as the VM went down
            command_ended()
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
    p.add_argument("--kms-pcr0", metavar="HEX",
                   help="the PCR0 the KMS key's policy releases to (default: the EIF's own PCR0)")
    p.add_argument("--attempts", type=int, default=DEFAULT_ATTEMPTS,
                   help=f"boots to try when one fails under emulation (default {DEFAULT_ATTEMPTS})")


def run_from_args(a: argparse.Namespace) -> int:
    if not 1 <= a.port <= 65535:
        raise LauncherError(f"--port {a.port}: not a TCP port")
    for name in ("memory", "cpus", "attempts"):
        if getattr(a, name) < 1:
            raise LauncherError(f"--{name} {getattr(a, name)}: must be at least 1")
    if a.kms_pcr0 is not None and not re.fullmatch(r"[0-9a-fA-F]{96}", a.kms_pcr0):
        raise LauncherError(f"--kms-pcr0 {a.kms_pcr0!r}: not 48 bytes of hex")
    return asyncio.run(run(a.eif, host=a.host, port=a.port, memory_mib=a.memory, cpus=a.cpus, accel=a.accel,
                           boot_timeout=a.boot_timeout, attempts=a.attempts, kms_pcr0=a.kms_pcr0))
