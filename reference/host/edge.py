"""Limits at the HTTP edge against slow and hostile clients (docs/spec/02-endpoints.md 2.6).

uvicorn closes idle keep-alive connections, but it gives a client forever to *finish* a request
(a head sent a byte a minute, a body that never completes) and accepts connections until the
process runs out of descriptors. This wraps whichever uvicorn protocol runs (h11 or httptools)
with: a deadline for each whole request, counted from the connection or from its first byte; a
bound on the request head that does not depend on how the bytes arrive; and a connection cap
below the descriptor limit. The ASGI app (app.py) never sees a request that broke them.
"""

from __future__ import annotations

import json
import resource
from dataclasses import dataclass

_END_OF_HEAD = b"\r\n\r\n"


@dataclass(frozen=True)
class EdgeLimits:
    request_timeout: float = 10.0  # seconds to receive a whole request (head and body)
    idle_timeout: float = 5.0  # seconds a kept-alive connection may sit idle between requests
    max_head_bytes: int = 16 * 1024  # request line and headers
    max_connections: int = 0  # 0: from the descriptor limit (max_connections_for_limit)
    # Connections asyncio accepts in one burst before any is seen by the protocol (it is also the
    # listen backlog): the cap can only act after a burst, so reserve + burst stay under the limit.
    accept_burst: int = 64


def max_connections_for_limit() -> int:
    """Open connections allowed: the soft descriptor limit minus a reserve for the process's own
    files (database, enclave link, logs), so accept() never fails for want of descriptors."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(16, min(soft - 128 - EdgeLimits.accept_burst, 8192))


def _canned(status: int, reason: str, type_: str, message: str) -> bytes:
    body = json.dumps({"error": {"message": message, "status": status, "type": type_}}).encode()
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % (status, reason.encode(), len(body))) + body


TIMEOUT_REPLY = _canned(408, "Request Timeout", "request_timeout", "the request was not received in time")
BAD_REQUEST_REPLY = _canned(400, "Bad Request", "bad_request", "the request cannot be parsed as HTTP")
HEAD_TOO_LARGE_REPLY = _canned(431, "Request Header Fields Too Large", "headers_too_large",
                               "the request line and headers exceed the limit")


def guarded_protocol(base: type, limits: EdgeLimits) -> type:
    """A subclass of uvicorn's ``base`` protocol class enforcing ``limits``."""
    max_connections = limits.max_connections or max_connections_for_limit()

    class Guarded(base):
        def connection_made(self, transport):
            super().connection_made(transport)
            self._deadline = None
            self._counted_cycle = None
            self._head_bytes = 0
            self._head_done = False
            self._tail = b""
            if len(self.connections) > max_connections:
                transport.close()  # over the cap: refused at once, before it holds anything
                return
            self._arm()

        def _arm(self) -> None:
            # A new request begins (or may begin): its head and body must arrive before the deadline.
            self._deadline = self.loop.call_later(limits.request_timeout, self._timed_out)
            self._counted_cycle = self.cycle  # the previous request's cycle, if any
            self._head_bytes, self._head_done, self._tail = 0, False, b""

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _timed_out(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            if not self._head_done:  # no request is running: an answer cannot collide with one
                self.transport.write(TIMEOUT_REPLY)
            self.transport.close()  # a running request sees a disconnect and is not forwarded (app.py)

        def data_received(self, data: bytes) -> None:
            if self.transport.is_closing():
                return
            if self._deadline is None:
                self._arm()
            if not self._head_done:
                # Count the head's bytes ourselves: the parsers bound only what they buffer, so a
                # large head arriving in one write would otherwise pass.
                window = self._tail + data
                end = window.find(_END_OF_HEAD)
                if end >= 0:
                    self._head_bytes += end + len(_END_OF_HEAD) - len(self._tail)
                    self._head_done = True
                else:
                    self._head_bytes += len(data)
                    self._tail = window[-3:]
                if self._head_bytes > limits.max_head_bytes:
                    self._disarm()
                    self.transport.write(HEAD_TOO_LARGE_REPLY)
                    self.transport.close()
                    return
            super().data_received(data)
            cycle = self.cycle
            if cycle is not None and cycle is not self._counted_cycle and not cycle.more_body:
                self._disarm()  # the whole request is in: from here the app and the enclave decide

        def send_400_response(self, msg: str) -> None:
            # The parser refused the request: answer the 4.1 error in JSON (2.5), not uvicorn's
            # text/plain, and close (what follows on the connection cannot be framed).
            self._disarm()
            if self.transport.is_closing():
                return
            cycle = self.cycle
            if not (cycle is not None and cycle is not self._counted_cycle and getattr(cycle, "response_started", False)):
                self.transport.write(BAD_REQUEST_REPLY)  # else the app has answered this request already
            self.transport.close()

        def connection_lost(self, exc):
            if getattr(self, "_deadline", None) is not None:
                self._disarm()
            super().connection_lost(exc)

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded


def protocol_class(http: str) -> type:
    """uvicorn's protocol class for ``--http`` (auto: httptools when installed, as uvicorn chooses)."""
    if http in ("auto", "httptools"):
        try:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

            return HttpToolsProtocol
        except ImportError:
            if http == "httptools":
                raise
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return H11Protocol
