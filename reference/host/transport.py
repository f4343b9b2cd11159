"""How the host reaches the enclave: a message kind plus opaque bytes, answered by a status and
opaque bytes. The host cannot read either (spec §2.3).

``InProcessTransport`` calls the enclave object directly (development, tests). A socket transport
with one framing for TCP and AF_VSOCK sits behind the same interface for a real enclave.
"""

from __future__ import annotations

from typing import Protocol


class Transport(Protocol):
    async def request(self, kind: str, body: bytes) -> tuple[int, bytes]: ...


class InProcessTransport:
    def __init__(self, enclave):
        self._enclave = enclave

    async def request(self, kind: str, body: bytes) -> tuple[int, bytes]:
        return self._enclave.handle_message(kind, body)
