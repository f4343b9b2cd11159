"""The enclave on a serial link (spec 9.11): ``serial:PORT`` answers frames on a character device.

A pseudo-terminal in raw mode stands in for the virtio-serial port: the enclave opens the
terminal's device like it opens ``/dev/vport0p1``, and the test speaks on the other end.
"""

from __future__ import annotations

import asyncio
import os
import tty
from pathlib import Path

import pytest

from reference import framing
from reference.enclave import server as enclave_server
from reference.host.transport import SocketTransport


class Echo:
    def handle_message(self, kind, body):
        return 200, kind.encode() + b":" + body


def _read_exactly(fd: int, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _read_reply(fd: int) -> tuple[int, bytes]:
    status, length = framing._REPLY_HEAD.unpack(_read_exactly(fd, framing._REPLY_HEAD.size))
    return status, _read_exactly(fd, length)


def test_frames_on_a_serial_device_are_answered_in_order():
    controller, device = os.openpty()
    tty.setraw(device)  # no echo, no line editing: a byte stream like the virtio port
    path = os.ttyname(device)

    async def go():
        started = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(enclave_server.serve(Echo(), f"serial:{path}", ready=started.set_result))
        await started
        loop = asyncio.get_running_loop()
        try:
            # two frames in one write, then one split across writes: replies come whole and in order
            os.write(controller, framing.encode_request("envelope", b"one") + framing.encode_request("attest", b"2"))
            assert await loop.run_in_executor(None, _read_reply, controller) == (200, b"envelope:one")
            assert await loop.run_in_executor(None, _read_reply, controller) == (200, b"attest:2")
            frame = framing.encode_request("public-key", bytes(range(256)) * 4)
            os.write(controller, frame[:7])
            await asyncio.sleep(0.1)
            os.write(controller, frame[7:])
            assert await loop.run_in_executor(None, _read_reply, controller) == (200, b"public-key:" + bytes(range(256)) * 4)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    try:
        asyncio.run(go())
    finally:
        os.close(controller)
        os.close(device)


def test_a_named_port_is_found_through_sysfs(tmp_path: Path):
    ports, dev = tmp_path / "virtio-ports", tmp_path / "dev"
    for name, label in (("vport0p1", "org.example.other"), ("vport0p2", "org.nitro-vault.link")):
        (ports / name).mkdir(parents=True)
        (ports / name / "name").write_text(label + "\n")
    assert enclave_server.resolve_serial_port("org.nitro-vault.link", ports=ports, dev=dev) == dev / "vport0p2"
    assert enclave_server.resolve_serial_port("/dev/hvc1", ports=ports, dev=dev) == Path("/dev/hvc1")
    with pytest.raises(OSError, match="no virtio-serial port named 'absent'"):
        enclave_server.resolve_serial_port("absent", ports=ports, dev=dev, wait=0.2)


@pytest.mark.parametrize("address, expected", [
    ("serial:org.nitro-vault.link", ("serial", ("org.nitro-vault.link",))),
    ("serial:/dev/vport0p1", ("serial", ("/dev/vport0p1",))),
])
def test_serial_addresses(address, expected):
    assert framing.parse_address(address) == expected


@pytest.mark.parametrize("address", ["serial:", "serial:a b", "serial:../x", "serial:name;rm"])
def test_bad_serial_addresses(address):
    with pytest.raises(ValueError):
        framing.parse_address(address)


def test_the_host_never_connects_to_a_serial_address():
    """The host reaches a microVM's enclave through the launcher's TCP port, never the port itself."""
    with pytest.raises(ValueError, match="launcher"):
        SocketTransport("serial:org.nitro-vault.link")
