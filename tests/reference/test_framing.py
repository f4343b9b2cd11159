"""The host↔enclave framing (spec §2.4)."""

import asyncio
import struct

import pytest

from reference import framing


def read(parse, data: bytes):
    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await parse(reader)

    return asyncio.run(go())


def test_request_and_reply_round_trip():
    kind, body = read(framing.read_request, framing.encode_request("envelope", b"\x00{json}"))
    assert (kind, body) == ("envelope", b"\x00{json}")
    assert read(framing.read_reply, framing.encode_reply(413, b"too big")) == (413, b"too big")


def test_oversized_frame_is_refused_before_reading_it():
    head = struct.pack(">H", 8) + b"envelope" + struct.pack(">I", framing.MAX_FRAME + 1)
    with pytest.raises(framing.FramingError):
        read(framing.read_request, head)
    with pytest.raises(framing.FramingError):
        read(framing.read_reply, struct.pack(">HI", 200, framing.MAX_FRAME + 1))


def test_truncated_frame_is_an_incomplete_read():
    with pytest.raises(asyncio.IncompleteReadError):
        read(framing.read_request, framing.encode_request("envelope", b"abcdef")[:-2])


@pytest.mark.parametrize("address, expected", [
    ("tcp:127.0.0.1:5000", ("tcp", ("127.0.0.1", 5000))),
    ("vsock:16:5000", ("vsock", (16, 5000))),
])
def test_addresses(address, expected):
    assert framing.parse_address(address) == expected


@pytest.mark.parametrize("address", ["127.0.0.1:5000", "tcp:host", "vsock:abc:5000", "udp:1:2", "tcp::5"])
def test_bad_addresses(address):
    with pytest.raises(ValueError):
        framing.parse_address(address)
