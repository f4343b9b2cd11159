"""Bad input and errors (spec §3.5, §3.6, §4)."""

from __future__ import annotations

import base64
import json
import os
import re

from ..protocol import envelope

from . import envelope as faults
from ._util import (expect_encrypted_error, expect_success, expect_unencrypted_error, reply_shape_problem,
                    request_bytes, require, top_up_record, unencrypted_shape_problem)
from .registry import Context, Level, check

# Every bad body is a request sealed to the target's own key with one fault (harness/suites/envelope.py):
# a Vault that tolerates the fault decrypts it and answers 200, so these checks can fail it.


def _huge_body(sealed) -> bytes:
    return envelope.Envelope(sealed.ephemeral_public_key, sealed.nonce, bytes(2 << 20)).to_bytes()


def _refused(cases):
    return [c for c in cases if c.expect == "refuse"]


@check("errors/acceptable-bodies", section="4.4", level=Level.MUST,
       requirement="Bodies the spec leaves open (extra members, a byte order mark) MAY be refused with an "
                   "unencrypted 4xx or accepted (the ping then succeeds), but MUST NOT get a 5xx.")
def acceptable_bodies(ctx: Context):
    faults.require_all(ctx, [c for c in faults.vector_cases(ctx) if c.expect == "either"], "acceptable bodies")


@check("errors/malformed-rejected", section="4.4", level=Level.MUST,
       requirement="Malformed envelopes (not JSON, wrong types, bad hex, wrong lengths), each sealed to the target, "
                   "MUST get an unencrypted 4xx, never a 5xx nor a reply.")
def malformed_rejected(ctx: Context):
    faults.require_all(ctx, _refused(faults.vector_cases(ctx)), "malformed bodies")


@check("errors/unencrypted-shape", section="4.1", level=Level.MUST,
       requirement='An unencrypted error MUST be exactly {"error": {"message": str, "status": int, "type": str}} '
                   "(details optional), with status equal to the HTTP status.")
def unencrypted_shape(ctx: Context):
    wrong = []
    for case in _refused(faults.vector_cases(ctx)):
        response = ctx.client.post_raw(case.body)
        try:
            body = response.json()
        except ValueError:
            body = response.text[:80]
        problem = unencrypted_shape_problem(body, response.status_code)
        if problem:
            wrong.append((case.name, problem))
    require(not wrong, "unencrypted errors of the wrong shape", expected="exactly {error: {message, status, type}}",
            actual=wrong[:10])


def _all_refusals(ctx: Context) -> list:
    return _refused(faults.vector_cases(ctx) + faults.hex_syntax_cases(ctx) + faults.json_syntax_cases(ctx)
                    + faults.duplicate_cases(ctx) + faults.length_cases(ctx) + faults.low_order_cases(ctx)
                    + faults.forgery_cases(ctx) + faults.size_cases(ctx))


@check("errors/type-codes", section="4.3", level=Level.SHOULD,
       requirement="Unencrypted errors SHOULD carry the type codes and statuses of the spec's table 1.")
def type_codes(ctx: Context):
    wrong = []
    for case in _all_refusals(ctx):
        response = ctx.client.post_raw(case.body)
        try:
            error = response.json().get("error") or {}
        except (ValueError, AttributeError):
            error = {}
        status = case.status or 400
        if error.get("type") != case.type or response.status_code != status:
            wrong.append((case.name, f"{status} {case.type}", f"{response.status_code} {error.get('type')}"))
    require(not wrong, f"{len(wrong)} type codes differ from table 1", expected=[(n, e) for n, e, _ in wrong[:20]],
            actual=[(n, a) for n, _, a in wrong[:20]])


@check("errors/low-order-key", section="3.6", level=Level.MUST,
       requirement="A request whose ephemeralPublicKey has small order MUST get an unencrypted 4xx, even when sealed "
                   "with HKDF of the all-zero shared secret (what a Vault without the check would derive).")
def low_order_key(ctx: Context):
    faults.require_all(ctx, faults.low_order_cases(ctx), "low-order keys")


@check("errors/huge-body", section="3.5", level=Level.MUST,
       requirement="A body over the size limit (1 MiB) MUST be refused with a 4xx (413 SHOULD) without harm.")
def huge_body(ctx: Context):
    secret, sealed = ctx.client.seal(b"{}")
    status, _ = expect_unencrypted_error(ctx, _huge_body(sealed), "2 MiB ciphertext")
    ctx.facts["huge_body_status"] = status


ENCRYPTED_CASES = [
    ("plaintext not JSON", b"\x00not json", "serialization_error"),
    ("plaintext not an object", b"[1, 2]", "serialization_error"),
    ("operation missing", b"{}", "serialization_error"),
    ("operation not a string", b'{"operation": 5}', "serialization_error"),
    ("options not an object", b'{"operation": "ping", "options": [1]}', "serialization_error"),
    ("auth not an object", b'{"operation": "ping", "auth": "x"}', "serialization_error"),
    ("unknown operation", request_bytes("conformance:no-such-operation"), "unknown_operation"),
    ("ping with a non-string message", request_bytes("ping", {"message": {"nested": True}}), "invalid_input"),
]


@check("errors/unknown-operation-code", section="5.2", level=Level.MUST,
       requirement="An operation the Vault does not implement MUST be answered with the encrypted error code "
                   "unknown_operation itself: it is how clients and the harness tell 'not implemented' from 'broken'.")
def unknown_operation_code(ctx: Context):
    for name in ("conformance:no-such-operation", "conformance:" + os.urandom(8).hex(), "PING"):
        exchange = ctx.client.exchange(request_bytes(name))
        require(exchange.response is not None, f"{name}: expected an encrypted reply", expected="encrypted reply",
                actual=f"HTTP {exchange.status}")
        expect_encrypted_error(exchange, f"operation {name!r}", code="unknown_operation")


@check("errors/encrypted-after-decrypt", section="4.2", level=Level.MUST,
       requirement="Once a request decrypts, every error (not JSON, unknown operation, bad options) MUST be an "
                   "encrypted success:false reply with a code, answered 200 or at least as an envelope.")
def encrypted_after_decrypt(ctx: Context):
    for what, plaintext, _ in ENCRYPTED_CASES:
        exchange = ctx.client.exchange(plaintext)
        require(exchange.response is not None, f"{what}: expected an encrypted reply",
                expected="encrypted reply", actual=f"HTTP {exchange.status}: {exchange.raw_response[:120]!r}")
        expect_encrypted_error(exchange, what)


@check("errors/encrypted-codes", section="4.3", level=Level.SHOULD,
       requirement="Encrypted errors SHOULD carry the codes of the spec's table 2 (serialization_error, "
                   "unknown_operation, invalid_input).")
def encrypted_codes(ctx: Context):
    wrong = []
    for what, plaintext, code in ENCRYPTED_CASES:
        exchange = ctx.client.exchange(plaintext)
        if exchange.error_code != code:
            wrong.append((what, code, exchange.error_code))
    require(not wrong, "encrypted error codes differ from table 2", expected=[(w, c) for w, c, _ in wrong],
            actual=[(w, a) for w, _, a in wrong])


@check("errors/survives-bad-input", section="4.4", level=Level.MUST,
       requirement="After any amount of bad input the service MUST keep serving with nothing lost.")
def survives_bad_input(ctx: Context):
    account = expect_success(ctx.client.call("serviceAccount:create", options={"metadata": {"probe": "survive"}}),
                             "serviceAccount:create")
    for case in _refused(faults.vector_cases(ctx)) * 2 + faults.low_order_cases(ctx) + faults.forgery_cases(ctx):
        ctx.client.post_raw(case.body)
    secret, sealed = ctx.client.seal(b"{}")
    expect_unencrypted_error(ctx, _huge_body(sealed), "huge body")
    data = expect_success(ctx.client.call("serviceAccount:get", auth={"adminKey": account["adminKey"]}),
                          "serviceAccount:get after bad input")
    require(data.get("id") == account["id"] and data.get("metadata") == {"probe": "survive"},
            "account changed after bad input", expected=account["id"], actual=data)


# ---- the whole run's answers (checks tagged "final" run after all others) ------------------


@check("errors/run-unencrypted-shape", section="4.1", level=Level.MUST, tags=("final",),
       requirement="Every answer of the run that is not a 200 MUST be an unencrypted error of exactly the shape of "
                   "4.1, with status equal to the HTTP status, and 4xx (or 503).")
def run_unencrypted_shape(ctx: Context):
    top_up_record(ctx)
    wrong = []
    for answer in ctx.client.answers:
        if answer.status == 200 or answer.method == "HEAD":
            continue
        problem = unencrypted_shape_problem(answer.json, answer.status)
        if problem:
            wrong.append(f"{answer.method} {answer.path} -> HTTP {answer.status}: {problem}")
    require(not wrong, f"{len(wrong)} error answers of the run have the wrong shape",
            expected='exactly {"error": {message, status, type}}', actual=wrong[:10])


@check("errors/run-reply-members", section="4.2", level=Level.MUST, tags=("final",),
       requirement="Every reply the harness opened in the run MUST have exactly success, data and error; a failure "
                   "exactly code and message (details optional) in error, and data null.")
def run_reply_members(ctx: Context):
    top_up_record(ctx)
    opened = [a for a in ctx.client.answers if a.reply is not None]
    wrong = [f"{a.method} {a.path}: {p}" for a in opened
             if (p := reply_shape_problem(a.reply, ctx.client.bindings.get(
                 a.request_envelope.ephemeral_public_key if a.request_envelope else None)))]
    require(opened, "no reply of the run could be opened", expected="encrypted replies", actual=0)
    require(not wrong, f"{len(wrong)} of {len(opened)} replies have the wrong shape", expected="success, data, error",
            actual=wrong[:10])


# Signs of internals in an error: stack traces of common runtimes, exception class names, paths.
TRACE_SIGNS = re.compile(
    r"Traceback|File \"|line \d+, in |\b[A-Z][A-Za-z0-9]*(?:Error|Exception)\b|\bat [\w.$<>]+ \(.*:\d+:\d+\)"
    r"|site-packages|node_modules|\.py\b|\.js:\d+|panicked at|goroutine \d+|/usr/|/home/|[A-Za-z]:\\\\")
FORBIDDEN_CODES = {"FETCH_PARSE_ERROR", "FETCH_NETWORK_ERROR"}  # the published client's own (4.3)
_HEX_RUN = re.compile(r"[0-9a-fA-F]{16,}")
WINDOW = 16  # 16 hex digits (8 bytes) of a value sent, or of a key, is an echo, not a coincidence


def _error_of(answer):
    if answer.unencrypted_error is not None:
        return answer.unencrypted_error.get("error")
    if isinstance(answer.reply, dict) and answer.reply.get("success") is False:
        return answer.reply.get("error")
    return None


def _key_material(ctx: Context, answer) -> list[bytes]:
    """The keys of this exchange the Vault knows: the static key, the request's shared secret and
    key (when the harness sealed it), and the key a Vault without the low-order check derives."""
    material = [ctx.client.enclave_public_key, envelope.LOW_ORDER_KEY]
    request = answer.request_envelope
    secret = ctx.client.secrets.get(request.ephemeral_public_key) if request else None
    if secret:
        try:
            shared = envelope.shared_secret(secret, ctx.client.enclave_public_key)
            material += [shared, envelope.hkdf(shared)]
        except envelope.EnvelopeError:
            pass
    return material


def _credentials(answer) -> list[str]:
    try:
        auth = json.loads(answer.request_plaintext or b"{}").get("auth") or {}
    except (ValueError, AttributeError):
        return []
    return [v for v in auth.values() if isinstance(v, str) and len(v) >= 8] if isinstance(auth, dict) else []


def message_problem(ctx: Context, answer) -> str | None:
    """What an error of the run reveals that it must not (spec §4.3, §4.4), or None."""
    error = _error_of(answer)
    if not isinstance(error, dict):
        return None
    text = json.dumps(error, ensure_ascii=False)
    if (sign := TRACE_SIGNS.search(text)):
        return f"internals ({sign.group(0)!r}) in {text[:160]}"
    if {error.get("type"), error.get("code")} & FORBIDDEN_CODES:
        return f"the published client's own code in {text[:160]}"
    runs = [run.lower() for run in _HEX_RUN.findall(text)]
    sent = answer.request_body.decode("latin-1").lower()
    materials = [m.hex() for m in _key_material(ctx, answer)]
    for run in runs:
        for start in range(len(run) - WINDOW + 1):
            window = run[start:start + WINDOW]
            if window in sent:
                return f"echoes the request body ({window}...) in {text[:160]}"
            if any(window in m for m in materials):
                return f"contains key material ({window}...) in {text[:160]}"
    for value in (base64.b64encode(m).decode().rstrip("=") for m in _key_material(ctx, answer)):
        if value[:WINDOW] in text:
            return f"contains key material (base64) in {text[:160]}"
    for credential in _credentials(answer):
        if credential in text:
            return f"repeats a credential of the request in {text[:160]}"
    return None


@check("errors/run-messages", section="4.4", level=Level.MUST, tags=("final",),
       requirement="No error of the run, encrypted or not, MAY contain a stack trace, an exception name, a file "
                   "path, key material, a credential sent, or (unencrypted) any part of the request body.")
def run_messages(ctx: Context):
    top_up_record(ctx)
    wrong = [f"{a.method} {a.path} -> HTTP {a.status}: {p}" for a in ctx.client.answers
             if (p := message_problem(ctx, a))]
    require(not wrong, f"{len(wrong)} error messages of the run reveal too much", expected="plain messages",
            actual=wrong[:10])
