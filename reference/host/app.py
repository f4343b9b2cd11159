"""The parent-instance HTTP front (spec §2): a bare ASGI app that moves bytes to the enclave.

No web framework on purpose: the host must not parse, log or hold what it forwards, and the
fewer layers sit on the request path, the closer the encrypted ping gets to its crypto floor.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import parse_qsl

from .transport import Transport

MAX_BODY_BYTES = 1 << 20  # spec §3.5; the enclave checks again
# An oversized body is read and discarded up to this much before the 413 is sent: a client (or a
# proxy) still sending when the connection closes gets a reset and may never see the 413. Beyond
# it, or past the request deadline (edge.py), the connection is just closed.
MAX_DRAIN_BYTES = 32 << 20
ENVELOPE_PATHS = ("/api/v1/enclave", "/v1/enclave/post")
ATTESTATION_PATH = "/api/v1/enclave/attestation"  # ?nonce=<hex>   (spec §8.7)
DEV_ROOT_PATH = "/api/v1/enclave/attestation/dev-root"  # simulated NSM only
_HEX = re.compile(r"[0-9a-fA-F]*")
_JSON = [(b"content-type", b"application/json")]
_CLOSE = [(b"connection", b"close")]
# Attestation documents cost a P-384 signature each and need no credential: at most this many are
# produced or queued at once; more are answered 503 with Retry-After (spec 2.6).
MAX_ATTESTATIONS_IN_FLIGHT = 4
_ABORTED = object()  # the client went away before its request was complete: nothing is forwarded
_log = logging.getLogger("vault.host")


def _error(status: int, type_: str, message: str) -> bytes:
    return json.dumps({"error": {"message": message, "status": status, "type": type_}}).encode()


_HEALTH = json.dumps({"status": "ok"}).encode()


class HostApp:
    def __init__(self, transport: Transport, *, max_body: int = MAX_BODY_BYTES,
                 max_attestations: int = MAX_ATTESTATIONS_IN_FLIGHT):
        self.transport = transport
        self.max_body = max_body
        self.max_attestations = max_attestations
        self._attestations = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            return
        extra = ()
        if _ambiguous_length(scope):
            # RFC 9112 6.3: with both, the body's end is ambiguous (request smuggling); refuse and
            # close, since what follows on the connection cannot be trusted either.
            status, body = 400, _error(400, "bad_request", "Content-Length and Transfer-Encoding together")
            extra = _CLOSE
        elif _path(scope) in ENVELOPE_PATHS and scope["method"] == "POST":
            # Every operation takes this path: it skips the router (bench/bench_ping.py).
            body = await self._read_body(scope, receive)
            if body is _ABORTED:
                return
            if body is None:
                # The rest of the body is still on the wire: close rather than read it.
                (status, body), extra = _too_large(self.max_body), _CLOSE
            else:
                status, body = await self._forward("envelope", body)
        else:
            status, body = await self._route(scope, receive)
            if status == 503 and _path(scope) == ATTESTATION_PATH:
                extra = [(b"retry-after", b"1")]
        # An explicit length rather than the server's default chunked framing: the same body,
        # and with h11 one write and ~20 us of CPU less per response.
        headers = [*_JSON, (b"content-length", b"%d" % len(body)), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _route(self, scope, receive) -> tuple[int, bytes]:
        path, method = _path(scope), scope["method"]
        if path == "/health":
            return (200, _HEALTH) if method in ("GET", "HEAD") else _not_allowed()
        if path == ATTESTATION_PATH:
            if method not in ("GET", "HEAD"):
                return _not_allowed()
            nonce = _query_nonce(scope.get("query_string", b""))
            if nonce is None:
                return 400, _error(400, "invalid_hex", "nonce must be even-length hex (at most 512 bytes)")
            if self._attestations >= self.max_attestations:
                return 503, _error(503, "service_unavailable", "too many attestation requests at once; retry")
            self._attestations += 1
            try:
                return await self._forward("attest", nonce)
            finally:
                self._attestations -= 1
        if path == DEV_ROOT_PATH:
            return await self._forward("attestation-dev-root", b"") if method in ("GET", "HEAD") else _not_allowed()
        if path in ENVELOPE_PATHS:
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

    async def _read_body(self, scope, receive):
        """The request body; None when it is larger than ``max_body`` (said or seen); ``_ABORTED``
        when the client disconnected before sending all of it (an incomplete request never runs)."""
        declared = _declared_length(scope)
        if declared is not None and declared > MAX_DRAIN_BYTES:
            return None  # refused at once, before waiting for any of it
        message = await receive()
        if message["type"] == "http.disconnect":
            return _ABORTED
        body = message.get("body", b"")
        if not message.get("more_body"):  # the whole body in one message: the usual case
            return body if len(body) <= self.max_body else None
        if (declared is not None and declared > self.max_body) or len(body) > self.max_body:
            # Too large: drained first (bounded above), so a client still sending sees the 413.
            return await _drain(receive, len(body), message)
        chunks, size = [body], len(body)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return _ABORTED
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return await _drain(receive, size, message)
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


def _query_nonce(query: bytes) -> bytes | None:
    """The ``nonce`` query parameter as bytes (empty when absent), or None when it is not hex."""
    values = [v for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if k == "nonce"]
    if not values:
        return b""
    text = values[-1]
    if len(values) > 1 or len(text) % 2 or len(text) > 1024 or not _HEX.fullmatch(text):
        return None
    return bytes.fromhex(text)


async def _drain(receive, seen: int, message) -> None:
    """Discard the rest of an oversized body (bounded), so the 413 reaches the client; None."""
    while message.get("more_body") and seen <= MAX_DRAIN_BYTES:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _ABORTED
        seen += len(message.get("body", b""))
    return None


def _path(scope) -> str:
    """The path as sent (2.5 compares byte for byte): ``raw_path``, not the percent-decoded
    ``path``, so /%68ealth is not /health and /api%2Fv1%2Fenclave is not an envelope path."""
    raw = scope.get("raw_path")
    return raw.decode("latin-1") if raw is not None else scope["path"]


def _declared_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


def _ambiguous_length(scope) -> bool:
    names = {name for name, _ in scope.get("headers", ())}
    return b"content-length" in names and b"transfer-encoding" in names


def _too_large(limit: int) -> tuple[int, bytes]:
    return 413, _error(413, "payload_too_large", f"body exceeds {limit} bytes")


def _not_allowed() -> tuple[int, bytes]:
    return 405, _error(405, "method_not_allowed", "method not allowed on this path")
