"""The enclave as its own process: answer framed requests from the host (spec §2.4).

Inside a Nitro enclave this listens on AF_VSOCK; under Docker or in tests, on TCP; in the local
microVM (spec 9.11), on a virtio-serial port: one byte stream that the launcher keeps in step, read
again from the start whenever the host side reconnects. Frames are answered one at a time per
connection, in order. A malformed frame closes that connection only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from pathlib import Path

from ..framing import FramingError, encode_reply, parse_address, read_request

_log = logging.getLogger("vault.enclave.server")

# The host keeps one connection (a few during restarts); anything beyond is refused, so held
# frames cannot grow memory without bound (each may buffer up to framing.MAX_FRAME).
MAX_CONNECTIONS = 16
# Once a frame's first byte has arrived, the rest must follow within this many seconds; an idle
# connection between frames is normal (the host's persistent link) and has no deadline.
FRAME_TIMEOUT = 10.0


async def serve(enclave, address: str, *, ready=None, max_connections: int = MAX_CONNECTIONS,
                frame_timeout: float = FRAME_TIMEOUT) -> None:
    family, sockaddr = parse_address(address)
    open_connections = 0

    async def on_connection(reader, writer):
        nonlocal open_connections
        if open_connections >= max_connections:
            _log.warning("refusing a connection: %d already open", open_connections)
            writer.close()
            return
        open_connections += 1
        try:
            while True:
                kind, body = await read_request(reader, frame_timeout=frame_timeout)
                status, reply = enclave.handle_message(kind, body)
                writer.write(encode_reply(status, reply))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.TimeoutError:
            _log.warning("closing a connection: a frame was not completed within %.0f s", frame_timeout)
        except (FramingError, UnicodeDecodeError) as error:
            _log.warning("closing a connection after a bad frame: %s", error)
        finally:
            open_connections -= 1
            writer.close()

    if family == "serial":
        await _serve_serial(sockaddr[0], on_connection, ready)
        return
    if family == "tcp":
        server = await asyncio.start_server(on_connection, *sockaddr)
    else:
        sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        sock.bind(sockaddr)
        server = await asyncio.start_server(on_connection, sock=sock)
    if ready is not None:
        ready(server)
    async with server:
        await server.serve_forever()


# --- the local microVM's link (spec 9.11) ---------------------------------------------------------

VIRTIO_PORTS = Path("/sys/class/virtio-ports")
PORT_WAIT = 30.0  # seconds for the port to appear: the driver probes it while the enclave starts
RECONNECT_DELAY = 0.2  # a port whose host side is not connected reads as end-of-file until it is


def resolve_serial_port(name: str, *, ports: Path = VIRTIO_PORTS, dev: Path = Path("/dev"),
                        wait: float = PORT_WAIT) -> Path:
    """The device of the virtio-serial port named ``name`` (or ``name`` itself if it is a path)."""
    if name.startswith("/"):
        return Path(name)
    deadline = time.monotonic() + wait
    while True:
        for entry in sorted(ports.glob("*")) if ports.is_dir() else ():
            try:
                if (entry / "name").read_text().strip() == name:
                    return dev / entry.name
            except OSError:
                continue
        if time.monotonic() >= deadline:
            raise OSError(f"no virtio-serial port named {name!r} appeared within {wait:.0f} s")
        time.sleep(0.1)


async def _open_stream(path: Path):
    """A character device as an asyncio (reader, writer) pair, and a function closing both sides."""
    loop = asyncio.get_running_loop()
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    reader = asyncio.StreamReader()
    read_transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                      os.fdopen(fd, "rb", buffering=0))
    write_transport, write_protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(os.dup(fd), "wb", buffering=0))
    writer = asyncio.StreamWriter(write_transport, write_protocol, reader, loop)
    return reader, writer, read_transport.close


async def _serve_serial(name: str, on_connection, ready) -> None:
    path = await asyncio.to_thread(resolve_serial_port, name)
    _log.warning("serving framed requests on %s (virtio-serial port %s)", path, name)
    if ready is not None:
        ready(None)
    while True:
        reader, writer, close_reader = await _open_stream(path)
        try:
            await on_connection(reader, writer)
        finally:
            close_reader()
        await asyncio.sleep(RECONNECT_DELAY)
