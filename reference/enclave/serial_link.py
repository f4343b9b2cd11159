"""A blocking request/reply client on a virtio-serial port (spec 9.11), in the framing of 2.4.

The local microVM's enclave reaches the launcher's services this way: its NSM
(``nsm/link.py``) and its KMS proxy (``kms_link.py``). One request at a time; each reply is read
whole, so the port never gets out of step.
"""

from __future__ import annotations

import io
import os
import threading

import cbor2

from ..framing import _REPLY_HEAD, MAX_FRAME, encode_request


class SerialLinkError(OSError):
    """The port closed, or the other side sent what the framing does not allow."""


class SerialLink:
    def __init__(self, port: str):
        from .server import resolve_serial_port

        self.path = resolve_serial_port(port)
        self._fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        self._lock = threading.Lock()

    def _read_exactly(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = os.read(self._fd, n - len(data))
            if not chunk:
                raise SerialLinkError(f"the link {self.path} closed")
            data += chunk
        return bytes(data)

    def exchange(self, kind: str, body: bytes) -> tuple[int, bytes]:
        with self._lock:
            frame = encode_request(kind, body)
            while frame:
                frame = frame[os.write(self._fd, frame):]
            status, length = _REPLY_HEAD.unpack(self._read_exactly(_REPLY_HEAD.size))
            if length > MAX_FRAME:
                raise SerialLinkError(f"the link {self.path} sent a reply of {length} bytes")
            return status, self._read_exactly(length)


def decode_request_map(body: bytes) -> dict:
    """A request body on the launcher's side: one CBOR map and nothing after it, else ValueError
    naming what is wrong (the reason goes back to the guest in a 400)."""
    stream = io.BytesIO(body)
    try:
        request = cbor2.CBORDecoder(stream).decode()
    except Exception:  # cbor2 raises several types on hostile input; all mean "not one CBOR item"
        raise ValueError("the request is not one CBOR item") from None
    if stream.tell() != len(body):
        raise ValueError("the request has bytes after its CBOR item")
    if not isinstance(request, dict):
        raise ValueError("the request must be a CBOR map")
    return request
