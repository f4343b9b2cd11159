"""The mutation suite's table: broken variants of the reference Vault, one client-observable defect each.

Each variant names the spec section it breaks and the harness check that must FAIL it. A variant is
a function that patches a freshly built reference app (``HostApp``) in the server process only; the
reference's source is never edited. Three kinds of hook cover the layers:

* ``_http``: rewrite an HTTP answer (status, headers, body) after the host built it;
* ``_ops``: rewrite a decrypted request's plaintext before the enclave runs it, or its reply after;
* ``_envelope_body``: rewrite a POSTed body before the enclave parses it;
plus direct patches of module attributes (reply sealing, attestation, body limits).

``survives`` lists the variants no check of the harness kills yet: their test is a strict xfail, so
the day a check kills one, CI says so and the entry must go.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Variant:
    name: str
    defect: str
    section: str
    check: str  # the harness check id that must FAIL this variant
    patch: Callable


VARIANTS: dict[str, Variant] = {}


def variant(name: str, section: str, check: str, defect: str):
    def register(patch):
        VARIANTS[name] = Variant(name, defect, section, check, patch)
        return patch
    return register


# --- hooks -----------------------------------------------------------------------------------------

def _http(app, rewrite):
    """Wrap the ASGI app: ``rewrite(method, path, query, status, headers, body)`` -> (status, headers, body)."""
    inner = app.__call__

    async def call(scope, receive, send):
        if scope["type"] != "http":
            return await inner(scope, receive, send)
        answer = {}

        async def capture(message):
            if message["type"] == "http.response.start":
                answer["status"], answer["headers"] = message["status"], list(message["headers"])
            else:
                answer["body"] = answer.get("body", b"") + message.get("body", b"")

        await inner(scope, receive, capture)
        status, headers, body = rewrite(scope["method"], scope["path"], scope.get("query_string", b""),
                                        answer["status"], answer["headers"], answer.get("body", b""))
        headers = [(k, v) for k, v in headers if k != b"content-length"] + [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    class Wrapped:
        def __init__(self):
            self.transport = app.transport

        async def __call__(self, scope, receive, send):
            return await call(scope, receive, send)

    return Wrapped()


def _enclave(app):
    return app.transport._enclave


def _ops(app, before=None, after=None):
    """Wrap Enclave.run: ``before(request) -> request`` on the decrypted JSON, ``after(request, reply) -> reply``."""
    enclave = _enclave(app)
    run = enclave.run

    def patched(plaintext, **kwargs):
        try:
            request = json.loads(plaintext)
        except ValueError:
            request = None
        if before and isinstance(request, dict):
            request = before(request)
            plaintext = json.dumps(request).encode()
        reply = run(plaintext, **kwargs)
        if after and isinstance(request, dict):
            reply = json.dumps(after(request, json.loads(reply))).encode()
        return reply

    enclave.run = patched
    return app


def _envelope_body(app, rewrite):
    enclave = _enclave(app)
    handle = enclave.handle_envelope
    enclave.handle_envelope = lambda body: handle(rewrite(body))
    return app


def _on(operation, change):
    """An ``after`` hook that changes successful replies of one operation: ``change(request, data)``."""
    def after(request, reply):
        if request.get("operation") == operation and reply.get("success"):
            reply["data"] = change(request, reply["data"])
        return reply
    return after


def _json_error(body):
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("error"), dict) else None


# --- HTTP routing and content types (spec §2) ----------------------------------------------------

@variant("health-wrong-body", "§2.1", "e2e/health", "GET /health answers {\"status\": \"up\"}")
def _(app):
    return _http(app, lambda m, p, q, s, h, b: (s, h, b'{"status":"up"}' if p == "/health" else b))


@variant("public-key-uppercase", "§2.2", "e2e/public-key", "publicKey in uppercase hex")
def _(app):
    def rewrite(m, p, q, s, h, b):
        if p == "/api/v1/enclave" and m == "GET":
            b = json.dumps({"publicKey": json.loads(b)["publicKey"].upper()}).encode()
        return s, h, b
    return _http(app, rewrite)


@variant("public-key-0x", "§2.2", "e2e/public-key", "publicKey with a 0x prefix")
def _(app):
    def rewrite(m, p, q, s, h, b):
        if p == "/api/v1/enclave" and m == "GET":
            b = json.dumps({"publicKey": "0x" + json.loads(b)["publicKey"]}).encode()
        return s, h, b
    return _http(app, rewrite)


@variant("seed-path-missing", "§2.3", "e2e/seed-path", "POST /v1/enclave/post answers 404")
def _(app):
    def rewrite(m, p, q, s, h, b):
        if p == "/v1/enclave/post":
            return 404, h, b'{"error":{"message":"no route","status":404,"type":"not_found"}}'
        return s, h, b
    return _http(app, rewrite)


@variant("unknown-path-200", "§2.5", "e2e/routing", "an unknown path answers 200 {}")
def _(app):
    return _http(app, lambda m, p, q, s, h, b: (200, h, b"{}") if s == 404 else (s, h, b))


@variant("unknown-path-wrong-type", "§2.5", "e2e/routing", "404 with type \"missing\" instead of not_found")
def _(app):
    return _http(app, lambda m, p, q, s, h, b: (s, h, b.replace(b'"not_found"', b'"missing"')) if s == 404 else (s, h, b))


@variant("wrong-method-404", "§2.5", "e2e/routing", "a method a path does not allow answers 404, not 405")
def _(app):
    def rewrite(m, p, q, s, h, b):
        if s == 405:
            return 404, h, b'{"error":{"message":"no route","status":404,"type":"not_found"}}'
        return s, h, b
    return _http(app, rewrite)


@variant("content-type-text", "§2.5", "e2e/run-content-types", "every answer labelled text/plain")
def _(app):
    return _http(app, lambda m, p, q, s, h, b: (s, [(b"content-type", b"text/plain")], b))


@variant("content-type-missing-on-errors", "§2.5", "e2e/run-content-types", "error answers carry no Content-Type")
def _(app):
    return _http(app, lambda m, p, q, s, h, b: (s, [] if s >= 400 else h, b))


# --- unencrypted errors (spec §4.1, §4.4) ----------------------------------------------------------

def _rewrite_errors(app, change):
    def rewrite(m, p, q, s, h, b):
        error = _json_error(b) if s >= 400 else None
        if error is not None:
            b = json.dumps(change(error, s)).encode()
        return s, h, b
    return _http(app, rewrite)


@variant("error-status-mismatch", "§4.1", "errors/unencrypted-shape", "the error body's status is always 400")
def _(app):
    return _rewrite_errors(app, lambda e, s: {"error": {**e["error"], "status": 400 if s != 400 else 422}})


@variant("error-extra-member", "§4.1", "errors/unencrypted-shape", "unencrypted errors carry a top-level code member")
def _(app):
    return _rewrite_errors(app, lambda e, s: {**e, "code": e["error"]["type"]})


@variant("error-message-not-string", "§4.1", "errors/unencrypted-shape", "the error message is a list")
def _(app):
    return _rewrite_errors(app, lambda e, s: {"error": {**e["error"], "message": [e["error"]["message"]]}})


@variant("error-type-missing", "§4.1", "errors/unencrypted-shape", "unencrypted errors have no type")
def _(app):
    return _rewrite_errors(app, lambda e, s: {"error": {k: v for k, v in e["error"].items() if k != "type"}})


@variant("error-traceback", "§4.4", "errors/run-messages", "unencrypted error messages end with a Python traceback line")
def _(app):
    return _rewrite_errors(app, lambda e, s: {"error": {**e["error"], "message": e["error"]["message"]
                                              + "\nTraceback (most recent call last):\n  File \"envelope.py\", line 1"}})


@variant("error-file-path", "§4.4", "errors/run-messages", "unencrypted error messages name a source file path")
def _(app):
    return _rewrite_errors(app, lambda e, s: {"error": {**e["error"], "message": e["error"]["message"]
                                              + " (at /srv/vault/reference/enclave/envelope.py:120)"}})


@variant("500-on-bad-input", "§4.4", "errors/malformed-rejected", "every envelope error answers 500 with a traceback")
def _(app):
    return _http(app, lambda m, p, q, s, h, b: (500, h, b"Traceback (most recent call last): ValueError")
                 if m == "POST" and 400 <= s < 500 and s != 413 else (s, h, b))


@variant("envelope-errors-200", "§3.1", "envelope/run-response-members", "envelope errors answered 200 (body an error, not an envelope)")
def _(app):
    return _http(app, lambda m, p, q, s, h, b: (200, h, b) if m == "POST" and 400 <= s < 500 and s != 413 else (s, h, b))


@variant("envelope-errors-503", "§4.4", "errors/malformed-rejected", "malformed envelopes answered 503 service_unavailable")
def _(app):
    return _rewrite_errors_status(app, 503)


def _rewrite_errors_status(app, status):
    def rewrite(m, p, q, s, h, b):
        if m == "POST" and 400 <= s < 500 and s != 413:
            return status, h, json.dumps({"error": {"message": "unavailable", "status": status,
                                                    "type": "service_unavailable"}}).encode()
        return s, h, b
    return _http(app, rewrite)


# --- host body limit (spec §3.5) --------------------------------------------------------------------

@variant("body-limit-one-short", "§3.5", "envelope/body-limit", "a body of exactly 1 MiB is refused")
def _(app):
    app.max_body = (1 << 20) - 1
    return app


@variant("huge-body-500", "§3.5", "errors/huge-body", "a body over 1 MiB answers 500")
def _(app):
    return _http(app, lambda m, p, q, s, h, b: (500, h, b'{"error":{"message":"boom","status":500,"type":"internal"}}')
                 if s == 413 else (s, h, b))


# --- envelope parsing (spec §3.5) -------------------------------------------------------------------

def _members(body):
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()) else None


def _rewrite_members(app, change):
    def rewrite(body):
        members = _members(body)
        if members is None:
            return body
        changed = {k: change(k, v) for k, v in members.items()}
        return json.dumps(changed).encode() if changed != members else body
    return _envelope_body(app, rewrite)


@variant("uppercase-hex-rejected", "§3.5", "envelope/hex-case-accepted", "request hex with A-F is refused")
def _(app):
    return _rewrite_members(app, lambda k, v: v + "zz" if re.search("[A-F]", v) else v)


@variant("0x-prefix-accepted", "§3.5", "envelope/hex-syntax-rejected", "a 0x prefix on a member is ignored")
def _(app):
    return _rewrite_members(app, lambda k, v: v[2:] if v[:2] in ("0x", "0X") else v)


@variant("whitespace-accepted", "§3.5", "envelope/hex-syntax-rejected", "whitespace around a member's hex is stripped")
def _(app):
    return _rewrite_members(app, lambda k, v: v.strip())


@variant("odd-hex-accepted", "§3.5", "envelope/vector-faults", "an odd number of hex digits is padded with a 0")
def _(app):
    return _rewrite_members(app, lambda k, v: "0" + v if len(v) % 2 and re.fullmatch("[0-9a-fA-F]+", v) else v)


@variant("long-key-truncated", "§3.5", "envelope/lengths-rejected", "an ephemeralPublicKey over 32 bytes is truncated to 32")
def _(app):
    return _rewrite_members(app, lambda k, v: v[:64] if k == "ephemeralPublicKey" and len(v) > 64 else v)


@variant("long-nonce-truncated", "§3.5", "envelope/lengths-rejected", "a nonce over 24 bytes is truncated to 24")
def _(app):
    return _rewrite_members(app, lambda k, v: v[:48] if k == "nonce" and len(v) > 48 else v)


@variant("trailing-bytes-accepted", "§3.5", "envelope/json-syntax-rejected", "bytes after the JSON object are ignored")
def _(app):
    def rewrite(body):
        end = body.rfind(b"}")
        try:
            json.JSONDecoder().raw_decode(body.decode())
            value, index = json.JSONDecoder().raw_decode(body.decode())
        except ValueError:
            return body
        return body[:index] if isinstance(value, dict) else body
    return _envelope_body(app, rewrite)


@variant("duplicate-members-accepted", "§3.5", "envelope/duplicate-members-rejected", "a duplicated member: the last copy wins")
def _(app):
    def rewrite(body):
        seen = {"dup": False}

        def pairs(items):
            if len({k for k, _ in items}) != len(items):
                seen["dup"] = True
            return dict(items)
        try:
            value = json.loads(body, object_pairs_hook=pairs)
        except ValueError:
            return body
        return json.dumps(value).encode() if seen["dup"] else body
    return _envelope_body(app, rewrite)


@variant("auth-failure-sealed", "§3.5", "e2e/tampered-ciphertext", "a request that fails authentication gets a 200 sealed error")
def _(app):
    from reference.enclave import envelope
    enclave = _enclave(app)
    handle = enclave.handle_envelope

    def patched(body):
        status, answer = handle(body)
        if status == 400 and b"decrypt" in answer.lower() or status == 400 and b"authent" in answer.lower():
            request = envelope.parse_body(body)
            sealer = envelope.ReplySealer(request.ephemeral_public_key, os.urandom)
            reply = b'{"success":false,"data":null,"error":{"code":"auth_failed","message":"forged"}}'
            return 200, sealer.seal(reply).to_bytes()
        return status, answer
    enclave.handle_envelope = patched
    return app


@variant("forgery-says-which", "§4.4", "envelope/forgeries-indistinguishable", "an authentication failure names the ciphertext length")
def _(app):
    enclave = _enclave(app)
    handle = enclave.handle_envelope

    def patched(body):
        status, answer = handle(body)
        error = _json_error(answer)
        members = _members(body) or {}
        if error and status == 400 and "ciphertext" in members and error["error"]["type"] not in ("invalid_hex",):
            error["error"]["message"] += f" ({len(members['ciphertext']) // 2} bytes)"
            answer = json.dumps(error).encode()
        return status, answer
    enclave.handle_envelope = patched
    return app


# --- reply sealing and freshness (spec §3.3, §3.4) --------------------------------------------------

def _sealer_random(app, choose):
    """Replace the reply sealer's random source: ``choose(size) -> bytes``."""
    from reference.enclave import envelope, service
    real = envelope.ReplySealer
    service.envelope.ReplySealer = lambda client_public, random_bytes: real(client_public, choose)
    return app


@variant("reuse-response-key", "§3.4", "e2e/response-fresh-key", "every reply uses one ephemeral key pair")
def _(app):
    from reference.enclave import envelope
    fixed = os.urandom(32)
    return _sealer_random(app, lambda size: fixed if size == envelope.KEY_BYTES else os.urandom(size))


@variant("reuse-response-nonce", "§3.4", "e2e/response-fresh-nonce", "every reply uses one nonce")
def _(app):
    from reference.enclave import envelope
    fixed = os.urandom(24)
    return _sealer_random(app, lambda size: fixed if size == envelope.NONCE_BYTES else os.urandom(size))


@variant("response-0x", "§3.1", "envelope/run-response-members", "response envelope members carry a 0x prefix")
def _(app):
    return _http(app, lambda m, p, q, s, h, b: (s, h, b.replace(b'":"', b'":"0x')) if m == "POST" and s == 200 else (s, h, b))


@variant("response-extra-member", "§3.1", "envelope/run-response-members", "response envelopes carry an extra version member")
def _(app):
    return _http(app, lambda m, p, q, s, h, b: (s, h, b[:-1] + b',"version":"1"}') if m == "POST" and s == 200 else (s, h, b))


# --- encrypted replies (spec §3.2, §4.2) -----------------------------------------------------------

@variant("plaintext-errors", "§4.2", "errors/encrypted-after-decrypt", "operation errors answered as unencrypted 400s")
def _(app):
    enclave = _enclave(app)
    run, handle = enclave.run, enclave.handle_envelope

    class Leak(Exception):
        pass

    def leaky_run(plaintext, **kwargs):
        reply = run(plaintext, **kwargs)
        if b'"success":false' in reply:
            raise Leak
        return reply

    def patched(body):
        try:
            return handle(body)
        except Leak:
            return 400, b'{"error": {"message": "failed", "status": 400, "type": "operation_failed"}}'
    enclave.run, enclave.handle_envelope = leaky_run, patched
    return app


@variant("reply-extra-member", "§4.2", "errors/run-reply-members", "every reply carries a requestId member")
def _(app):
    return _ops(app, after=lambda req, reply: {**reply, "requestId": "1"})


@variant("binding-wrong-echo", "§5.2", "errors/run-reply-members",
         "a responseBinding is echoed with its first byte changed (a forger's guess passes a lax check)")
def _(app):
    def after(request, reply):
        if isinstance(request.get("responseBinding"), str) and "responseBinding" in reply:
            reply["responseBinding"] = "00" + reply["responseBinding"][2:] if not reply["responseBinding"].startswith(
                "00") else "11" + reply["responseBinding"][2:]
        return reply
    return _ops(app, after=after)


@variant("binding-unasked", "§5.2", "errors/run-reply-members",
         "every reply carries a responseBinding, also when the request sent none")
def _(app):
    return _ops(app, after=lambda req, reply: {**reply, "responseBinding": "ab" * 32})


@variant("error-data-not-null", "§4.2", "errors/run-reply-members", "failed replies carry data {} instead of null")
def _(app):
    return _ops(app, after=lambda req, reply: {**reply, "data": {}} if not reply.get("success") else reply)


@variant("error-without-message", "§4.2", "errors/run-reply-members", "failed replies have no error message")
def _(app):
    return _ops(app, after=lambda req, reply: {**reply, "error": {"code": reply["error"]["code"]}}
                if not reply.get("success") else reply)


@variant("encrypted-error-exception-name", "§4.4", "errors/run-messages", "encrypted error messages name the Python exception")
def _(app):
    return _ops(app, after=lambda req, reply: {**reply, "error": {**reply["error"], "message": "KeyError: "
                + reply["error"]["message"]}} if not reply.get("success") else reply)


@variant("ping-strips", "§3.2", "e2e/round-trip-arbitrary", "ping strips whitespace around the message")
def _(app):
    return _ops(app, after=_on("ping", lambda req, data: {**data, "pong": data["pong"].strip()}
                               if isinstance(data.get("pong"), str) else data))


@variant("ping-wrong-pong", "§3.3", "e2e/round-trip", "ping answers pong with the message reversed")
def _(app):
    return _ops(app, after=_on("ping", lambda req, data: {**data, "pong": data["pong"][::-1] + "!"}
                               if isinstance(data.get("pong"), str) else data))


# --- service accounts (spec §6) --------------------------------------------------------------------

@variant("create-id-not-uuid", "§6.1", "service-account/create", "create answers an id that is not a UUID")
def _(app):
    ids = {}

    def after(req, reply):
        if req.get("operation") in ("serviceAccount:create", "serviceAccount:get") and reply.get("success"):
            reply["data"]["id"] = "acct-" + reply["data"]["id"].replace("-", "")
        return reply
    return _ops(app, after=after)


@variant("create-missing-updated-at", "§6.6", "service-account/reply-members", "create's reply has no updatedAt")
def _(app):
    return _ops(app, after=_on("serviceAccount:create", lambda r, d: {k: v for k, v in d.items() if k != "updatedAt"}))


@variant("create-extra-member", "§6.6", "service-account/reply-members", "create's reply carries an extra status member")
def _(app):
    return _ops(app, after=_on("serviceAccount:create", lambda r, d: {**d, "status": "active"}))


@variant("get-extra-member", "§6.6", "service-account/reply-members", "get's reply carries an extra status member")
def _(app):
    return _ops(app, after=_on("serviceAccount:get", lambda r, d: {**d, "status": "active"}))


@variant("rotate-extra-member", "§6.6", "service-account/reply-members", "rotate's reply also carries the account id")
def _(app):
    return _ops(app, after=_on("serviceAccount:rotate", lambda r, d: {**d, "rotated": True}))


@variant("get-leaks-admin-key", "§6.6", "service-account/no-leak", "get's reply echoes the admin key it was given")
def _(app):
    def change(req, data):
        return {**data, "metadata": {**data.get("metadata", {}), "by": str((req.get("auth") or {}).get("adminKey"))}}
    return _ops(app, after=_on("serviceAccount:get", change))


@variant("get-drops-metadata", "§6.3", "service-account/metadata-roundtrip", "get always returns metadata {}")
def _(app):
    return _ops(app, after=_on("serviceAccount:get", lambda r, d: {**d, "metadata": {}}))


@variant("metadata-trimmed", "§6.3", "service-account/metadata-roundtrip", "metadata values are stored trimmed")
def _(app):
    def before(req):
        options = req.get("options")
        if req.get("operation") == "serviceAccount:create" and isinstance(options, dict) \
                and isinstance(options.get("metadata"), dict):
            options["metadata"] = {k: v.strip() if isinstance(v, str) else v for k, v in options["metadata"].items()}
        return req
    return _ops(app, before=before)


@variant("metadata-default-null", "§6.1", "service-account/metadata-default", "create without metadata stores null")
def _(app):
    missing = set()

    def before(req):
        options = req.get("options")
        return req

    def after(req, reply):
        options = req.get("options") if isinstance(req.get("options"), dict) else {}
        if req.get("operation") == "serviceAccount:get" and reply.get("success") and reply["data"].get("metadata") == {}:
            reply["data"]["metadata"] = None
        return reply
    return _ops(app, before=before, after=after)


@variant("metadata-list-accepted", "§6.1", "service-account/metadata-invalid", "a non-object metadata is stored as {}")
def _(app):
    def before(req):
        options = req.get("options")
        if req.get("operation") == "serviceAccount:create" and isinstance(options, dict) \
                and "metadata" in options and not isinstance(options["metadata"], dict):
            options["metadata"] = {}
        return req
    return _ops(app, before=before)


@variant("metadata-nested-accepted", "§6.1", "service-account/metadata-invalid", "non-string metadata values are stored as their JSON")
def _(app):
    def before(req):
        options = req.get("options")
        if req.get("operation") == "serviceAccount:create" and isinstance(options, dict) \
                and isinstance(options.get("metadata"), dict):
            options["metadata"] = {k: v if isinstance(v, str) else json.dumps(v) for k, v in options["metadata"].items()}
        return req
    return _ops(app, before=before)


def _alias(app, slot, remember):
    """Accept a credential that should be refused by swapping in another one: ``remember(req, reply, aliases)``."""
    aliases = {}

    def before(req):
        auth = req.get("auth")
        if isinstance(auth, dict) and isinstance(auth.get(slot), str) and auth[slot] in aliases:
            auth[slot] = aliases[auth[slot]]
        return req

    def after(req, reply):
        remember(req, reply, aliases)
        return reply
    return _ops(app, before=before, after=after)


@variant("old-admin-key-lives", "§6.4", "service-account/rotate", "after rotation the old admin key still works")
def _(app):
    created = {}

    def remember(req, reply, aliases):
        if not reply.get("success"):
            return
        if req["operation"] == "serviceAccount:create":
            created[reply["data"]["rotationCode"]] = reply["data"]["adminKey"]
        if req["operation"] == "serviceAccount:rotate":
            code = req["auth"]["rotationCode"]
            old = created.pop(code, None)
            if old:
                aliases[old] = reply["data"]["newAdminKey"]
            created[reply["data"]["newRotationCode"]] = reply["data"]["newAdminKey"]
    return _alias(app, "adminKey", remember)


@variant("old-rotation-code-lives", "§6.4", "service-account/rotate", "after rotation the old rotation code still rotates")
def _(app):
    def remember(req, reply, aliases):
        if reply.get("success") and req["operation"] == "serviceAccount:rotate":
            old = req["auth"]["rotationCode"]
            aliases[old] = reply["data"]["newRotationCode"]
            for key, value in list(aliases.items()):
                if value == old:
                    aliases[key] = reply["data"]["newRotationCode"]
    return _alias(app, "rotationCode", remember)


@variant("rotation-code-as-admin-key", "§6.2", "service-account/credential-matrix", "the rotation code works as an admin key")
def _(app):
    def remember(req, reply, aliases):
        if reply.get("success") and req["operation"] == "serviceAccount:create":
            aliases[reply["data"]["rotationCode"]] = reply["data"]["adminKey"]
    return _alias(app, "adminKey", remember)


@variant("rotate-new-key-broken", "§6.4", "service-account/rotate", "rotate answers a newAdminKey that does not work")
def _(app):
    return _ops(app, after=_on("serviceAccount:rotate", lambda r, d: {**d, "newAdminKey": d["newAdminKey"][::-1]}))


@variant("rotated-key-distinguishable", "§6.2", "service-account/refusal-indistinguishable", "a rotated-away admin key gets its own message")
def _(app):
    retired = set()

    def after(req, reply):
        auth = req.get("auth") if isinstance(req.get("auth"), dict) else {}
        if req.get("operation") == "serviceAccount:create" and reply.get("success"):
            retired.discard(reply["data"]["adminKey"])
        if not reply.get("success") and auth.get("adminKey") in retired:
            reply["error"]["message"] = "this admin key was rotated"
        return reply

    def before(req):
        return req
    enclave = _enclave(app)
    _ops(app, after=after)
    # remember the admin key each rotation kills: the create reply pairs code and key
    pairs = {}
    run = enclave.run

    def tracking(plaintext, **kwargs):
        reply = run(plaintext, **kwargs)
        try:
            request, answer = json.loads(plaintext), json.loads(reply)
        except ValueError:
            return reply
        if isinstance(request, dict) and answer.get("success"):
            if request.get("operation") == "serviceAccount:create":
                pairs[answer["data"]["rotationCode"]] = answer["data"]["adminKey"]
            if request.get("operation") == "serviceAccount:rotate":
                old = pairs.pop(request["auth"]["rotationCode"], None)
                retired.add(old)
                pairs[answer["data"]["newRotationCode"]] = answer["data"]["newAdminKey"]
        return reply
    enclave.run = tracking
    return app


@variant("get-shows-latest-account", "§6.3", "service-account/state-after-create", "get returns the metadata of the newest account")
def _(app):
    latest = {}

    def after(req, reply):
        if req.get("operation") == "serviceAccount:create" and reply.get("success"):
            options = req.get("options") if isinstance(req.get("options"), dict) else {}
            latest["metadata"] = options.get("metadata", {})
        if req.get("operation") == "serviceAccount:get" and reply.get("success") and "metadata" in latest:
            reply["data"]["metadata"] = latest["metadata"]
        return reply
    return _ops(app, after=after)


@variant("timestamps-not-iso", "§6.6", "service-account/timestamps", "createdAt written as Unix seconds in a string")
def _(app):
    from datetime import datetime

    def unix(text):
        return str(int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()))

    def after(req, reply):
        if req.get("operation") in ("serviceAccount:create", "serviceAccount:get") and reply.get("success"):
            reply["data"]["createdAt"] = unix(reply["data"]["createdAt"])
        return reply
    return _ops(app, after=after)


@variant("updated-at-ahead", "§6.6", "service-account/timestamps", "updatedAt is one second after createdAt at creation")
def _(app):
    from datetime import datetime, timedelta
    from reference.enclave.service import iso8601

    def later(text):
        return iso8601(datetime.fromisoformat(text.replace("Z", "+00:00")) + timedelta(seconds=1))

    def after(req, reply):
        if req.get("operation") in ("serviceAccount:create", "serviceAccount:get") and reply.get("success"):
            if reply["data"]["updatedAt"] == reply["data"]["createdAt"]:
                reply["data"]["updatedAt"] = later(reply["data"]["updatedAt"])
        return reply
    return _ops(app, after=after)


@variant("updated-at-frozen", "§6.6", "service-account/timestamps", "get's updatedAt never moves on rotation")
def _(app):
    return _ops(app, after=_on("serviceAccount:get", lambda r, d: {**d, "updatedAt": d["createdAt"]}))


@variant("created-at-moves", "§6.6", "service-account/timestamps", "get's createdAt follows updatedAt after a rotation")
def _(app):
    return _ops(app, after=_on("serviceAccount:get", lambda r, d: {**d, "createdAt": d["updatedAt"]}))


@variant("unknown-operation-other-code", "§5.2", "errors/unknown-operation-code",
         "an unimplemented operation is answered with the code not_implemented instead of unknown_operation")
def _(app):
    def after(req, reply):
        error = reply.get("error") if isinstance(reply.get("error"), dict) else {}
        if error.get("code") == "unknown_operation":
            error["code"] = "not_implemented"
        return reply
    return _ops(app, after=after)


@variant("auth-error-echoes-key", "§4.4", "errors/run-messages", "a refused admin key is quoted in the error message")
def _(app):
    def after(req, reply):
        auth = req.get("auth") if isinstance(req.get("auth"), dict) else {}
        if not reply.get("success") and isinstance(auth.get("adminKey"), str) and auth["adminKey"]:
            reply["error"]["message"] += f": {auth['adminKey']}"
        return reply
    return _ops(app, after=after)


# --- attestation (spec §8.9) ------------------------------------------------------------------------

@variant("unattested-key", "§8.9", "attestation/plain-document", "the NSM attests another X25519 key than the served one")
def _(app):
    from reference.enclave import attestation
    real = attestation.attest
    attestation.attest = lambda nsm, static_public, nonce, binding=b"": real(nsm, os.urandom(32), nonce, binding)
    return app


@variant("attestation-nonce-ignored", "§8.9", "attestation/plain-document", "GET attestation does not echo the nonce")
def _(app):
    from reference.enclave import attestation
    real = attestation.plain_attest
    attestation.plain_attest = lambda nsm, public_key, nonce: real(nsm, public_key, b"")
    return app


@variant("attestation-cached", "§8.9", "attestation/fresh-per-nonce", "GET attestation answers the first document for every nonce")
def _(app):
    cache = {}

    def rewrite(m, p, q, s, h, b):
        if p == "/api/v1/enclave/attestation" and s == 200:
            b = cache.setdefault("doc", b)
        return s, h, b
    return _http(app, rewrite)


@variant("attestation-odd-nonce-accepted", "§8.9", "attestation/bad-nonce", "an odd-length nonce is accepted (last digit dropped)")
def _(app):
    from reference.host import app as host
    real = host._query_nonce

    def lenient(query):
        from urllib.parse import parse_qsl
        values = [v for k, v in parse_qsl(query.decode("latin-1")) if k == "nonce"]
        if len(values) == 1 and len(values[0]) % 2 and re.fullmatch("[0-9a-fA-F]+", values[0]):
            return bytes.fromhex(values[0][:-1])
        return real(query)
    host._query_nonce = lenient
    return app


@variant("attestation-long-nonce-accepted", "§8.9", "attestation/bad-nonce", "a nonce over 512 bytes is truncated, not refused")
def _(app):
    from reference.host import app as host
    real = host._query_nonce

    def lenient(query):
        from urllib.parse import parse_qsl
        values = [v for k, v in parse_qsl(query.decode("latin-1")) if k == "nonce"]
        if len(values) == 1 and len(values[0]) > 1024 and not len(values[0]) % 2 and re.fullmatch("[0-9a-fA-F]+", values[0]):
            return bytes.fromhex(values[0][:1024])
        return real(query)
    host._query_nonce = lenient
    return app


@variant("attestation-bad-nonce-500", "§8.9", "attestation/bad-nonce", "a bad GET nonce answers 500")
def _(app):
    return _http(app, lambda m, p, q, s, h, b: (500, h, b'{"error":{"message":"bad","status":500,"type":"internal"}}')
                 if p == "/api/v1/enclave/attestation" and s == 400 else (s, h, b))


@variant("envelope-attest-other-key", "§8.9", "attestation/envelope-document", "enclave:attest attests a random key")
def _(app):
    from reference.enclave import attestation
    from reference.enclave.operations import __init__ as _unused  # noqa: F401  (the operations table is built already)
    real = attestation.plain_attest
    enclave = _enclave(app)
    handler = enclave.operations["enclave:attest"]
    real_attest = attestation.attest

    def other(context, request):
        attestation.attest = lambda nsm, static_public, nonce, binding=b"": real_attest(nsm, os.urandom(32), nonce, binding)
        try:
            return handler(context, request)
        finally:
            attestation.attest = real_attest
    enclave.operations["enclave:attest"] = other
    return app


@variant("envelope-attest-nonce-dropped", "§8.9", "attestation/envelope-document", "enclave:attest ignores the request's nonce")
def _(app):
    def before(req):
        if req.get("operation") == "enclave:attest" and isinstance(req.get("options"), dict):
            req["options"].pop("nonce", None)
        return req
    return _ops(app, before=before)


@variant("envelope-attest-bad-nonce-accepted", "§8.9", "attestation/bad-nonce", "enclave:attest accepts a non-hex nonce as empty")
def _(app):
    def before(req):
        options = req.get("options")
        if req.get("operation") == "enclave:attest" and isinstance(options, dict) and isinstance(options.get("nonce"), str):
            nonce = options["nonce"]
            if len(nonce) % 2 or not re.fullmatch("[0-9a-fA-F]*", nonce) or len(nonce) > 1024:
                options["nonce"] = ""
        return req
    return _ops(app, before=before)


# --- families in their own modules ---------------------------------------------------------------
# Each ``variants_<area>.py`` beside this file registers more variants with the same decorator and
# hooks (``from tests.mutants.variants import variant, _ops, ...``); importing them here keeps
# VARIANTS the one table the server and the test read.
def _load_families() -> None:
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules([os.path.dirname(__file__)]):
        if module.name.startswith("variants_"):
            importlib.import_module(f"{__package__}.{module.name}")


_load_families()
