"""The parent-instance HTTP front (spec §2): a bare ASGI app that moves bytes to the enclave.

No web framework on purpose: the host must not parse, log or hold what it forwards, and the
fewer layers sit on the request path, the closer the encrypted ping gets to its crypto floor.
"""

from __future__ import annotations

import json
import logging

from .transport import Transport

MAX_BODY_BYTES = 1 << 20  # spec §3.5; the enclave checks again
ENVELOPE_PATHS = ("/api/v1/enclave", "/v1/enclave/post")
_JSON = [(b"content-type", b"application/json")]
_log = logging.getLogger("vault.host")


def _error(status: int, type_: str, message: str) -> bytes:
    return json.dumps({"error": {"message": message, "status": status, "type": type_}}).encode()


_HEALTH = json.dumps({"status": "ok"}).encode()


class HostApp:
    def __init__(self, transport: Transport, *, max_body: int = MAX_BODY_BYTES):
        self.transport = transport
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            return
        status, body = await self._route(scope, receive)
        await send({"type": "http.response.start", "status": status, "headers": _JSON})
        await send({"type": "http.response.body", "body": body})

    async def _route(self, scope, receive) -> tuple[int, bytes]:
        path, method = scope["path"], scope["method"]
        if path == "/health":
            return (200, _HEALTH) if method in ("GET", "HEAD") else _not_allowed()
        if path in ENVELOPE_PATHS:
            if method == "POST":
                body = await self._read_body(scope, receive)
                if body is None:
                    return 413, _error(413, "payload_too_large", f"body exceeds {self.max_body} bytes")
                return await self._forward("envelope", body)
            if method in ("GET", "HEAD") and path == "/api/v1/enclave":
                return await self._forward("public-key", b"")
            return _not_allowed()
        return 404, _error(404, "not_found", f"no route for {path}")

    async def _forward(self, kind: str, body: bytes) -> tuple[int, bytes]:
        try:
            return await self.transport.request(kind, body)
        except Exception:  # the enclave is unreachable or crashed: never leak details
            _log.exception("enclave transport failed")
            return 503, _error(503, "service_unavailable", "the enclave is not reachable")

    async def _read_body(self, scope, receive) -> bytes | None:
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def _not_allowed() -> tuple[int, bytes]:
    return 405, _error(405, "method_not_allowed", "method not allowed on this path")
