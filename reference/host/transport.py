"""How the host reaches the enclave: a message kind plus opaque bytes, answered by a status and
opaque bytes. The host cannot read either (spec §2.4).

``InProcessTransport`` calls the enclave object directly (development, tests). A socket transport
with one framing for TCP and AF_VSOCK sits behind the same interface for a real enclave.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Protocol


class Transport(Protocol):
    async def request(self, kind: str, body: bytes) -> tuple[int, bytes]: ...


class InProcessTransport:
    def __init__(self, enclave):
        self._enclave = enclave

    async def request(self, kind: str, body: bytes) -> tuple[int, bytes]:
        return self._enclave.handle_message(kind, body)


DEFAULT_ENCLAVE_TIMEOUT = 30.0  # seconds for the enclave's answer, queueing behind others included
CONNECT_TIMEOUT = 5.0


class SocketTransport:
    """Frames over one persistent stream to the enclave process (TCP here, AF_VSOCK on AWS).

    Requests are serialised on the connection (the enclave answers in order); a broken
    connection is dropped and re-opened on the next request. A request not answered within
    ``timeout`` fails (the host answers 503, spec 4.3) and its connection is dropped, so a late
    answer can never be read as the next request's.
    """

    def __init__(self, address: str, *, timeout: float = DEFAULT_ENCLAVE_TIMEOUT):
        from ..framing import parse_address

        self.family, self.sockaddr = parse_address(address)
        if self.family == "serial":
            raise ValueError("serial: is where the enclave listens in a microVM; the host connects to the "
                             "launcher's tcp:HOST:PORT")
        self.timeout = timeout
        self._lock = asyncio.Lock()
        self._streams = None

    async def _connect(self):
        if self.family == "tcp":
            return await asyncio.open_connection(*self.sockaddr)
        sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, self.sockaddr)
        return await asyncio.open_connection(sock=sock)

    async def request(self, kind: str, body: bytes) -> tuple[int, bytes]:
        return await asyncio.wait_for(self._request(kind, body), self.timeout)

    async def _request(self, kind: str, body: bytes) -> tuple[int, bytes]:
        from ..framing import encode_request, read_reply

        async with self._lock:
            if self._streams is not None and self._streams[0].at_eof():
                # The enclave closed this connection while it sat idle (it restarted): nothing was
                # sent on it, so a new one is safe, and the first request after a restart works.
                self._streams[1].close()
                self._streams = None
            if self._streams is None:
                self._streams = await asyncio.wait_for(self._connect(), CONNECT_TIMEOUT)
            reader, writer = self._streams
            try:
                writer.write(encode_request(kind, body))
                await writer.drain()
                return await read_reply(reader)
            except BaseException:  # a timeout (cancellation) included: the stream is out of step
                self._streams = None
                writer.close()
                raise
