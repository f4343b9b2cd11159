"""One framing for the host↔enclave link, over TCP (here) or AF_VSOCK (on AWS) (spec §2.4).

A request frame: u16 kind length, kind (ASCII), u32 body length, body.
A reply frame:   u16 HTTP status, u32 body length, body.
All integers big-endian. Both sides refuse frames over ``MAX_FRAME`` so neither can be made to
allocate without bound. Pure functions over bytes; the socket code lives in the callers.
"""

from __future__ import annotations

import asyncio
import re
import struct

MAX_FRAME = 2 << 20  # twice the host's body limit: the host never forwards more than 1 MiB
_REQUEST_HEAD = struct.Struct(">H")
_LENGTH = struct.Struct(">I")
_REPLY_HEAD = struct.Struct(">HI")


class FramingError(Exception):
    """The peer sent a frame this protocol does not allow."""


def encode_request(kind: str, body: bytes) -> bytes:
    raw_kind = kind.encode("ascii")
    return _REQUEST_HEAD.pack(len(raw_kind)) + raw_kind + _LENGTH.pack(len(body)) + body


def encode_reply(status: int, body: bytes) -> bytes:
    return _REPLY_HEAD.pack(status, len(body)) + body


def parse_address(address: str) -> tuple[str, tuple]:
    """``tcp:HOST:PORT``, ``vsock:CID:PORT`` or ``serial:PORT`` → (family, sockaddr).

    ``serial:`` is the enclave's side of the local microVM's link (spec 9.11): a virtio-serial port
    named ``PORT`` (or the device at that absolute path), one byte stream instead of connections."""
    scheme, _, rest = address.partition(":")
    if scheme == "serial":
        if not rest or "\0" in rest or (not rest.startswith("/") and not re.fullmatch(r"[A-Za-z0-9._-]+", rest)):
            raise ValueError(f"serial needs a virtio port name or a device path, got {address!r}")
        return "serial", (rest,)
    host, _, port = rest.rpartition(":")
    if scheme not in ("tcp", "vsock") or not host or not port.isdigit():
        raise ValueError(f"address must be tcp:HOST:PORT, vsock:CID:PORT or serial:PORT, got {address!r}")
    if scheme == "vsock":
        if not host.isdigit():
            raise ValueError(f"vsock CID must be a number, got {host!r}")
        return "vsock", (int(host), int(port))
    return "tcp", (host, int(port))


async def read_request(reader, frame_timeout: float | None = None) -> tuple[str, bytes]:
    """One request frame. The first byte may take as long as the link stays idle; with
    ``frame_timeout``, the rest of the frame must follow within that many seconds
    (``asyncio.TimeoutError`` otherwise), so a peer cannot hold a partial frame forever."""
    first = await reader.readexactly(1)

    async def rest() -> tuple[str, bytes]:
        (kind_length,) = _REQUEST_HEAD.unpack(first + await reader.readexactly(_REQUEST_HEAD.size - 1))
        kind = (await reader.readexactly(kind_length)).decode("ascii", errors="strict")
        (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
        if length > MAX_FRAME:
            raise FramingError(f"request frame of {length} bytes exceeds {MAX_FRAME}")
        return kind, await reader.readexactly(length)

    return await (asyncio.wait_for(rest(), frame_timeout) if frame_timeout else rest())


async def read_reply(reader) -> tuple[int, bytes]:
    status, length = _REPLY_HEAD.unpack(await reader.readexactly(_REPLY_HEAD.size))
    if length > MAX_FRAME:
        raise FramingError(f"reply frame of {length} bytes exceeds {MAX_FRAME}")
    return status, await reader.readexactly(length)
