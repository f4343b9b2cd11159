"""Bad input and errors (spec §3.5, §3.6, §4)."""

from __future__ import annotations

import json

import vectors
from harness.protocol import envelope

from ._util import expect_encrypted_error, expect_success, expect_unencrypted_error, request_bytes, require
from .registry import Context, Level, check

# Target-independent bad bodies come from the shared vector file (vectors/envelope_invalid.json):
# stages "body" and "fields" are refused before any key is used, and so are low-order keys.
# Cases sealed to the vector file's own enclave key ("open" stage) need that key and are checked
# by the project's tests instead; the harness makes its own tampered envelopes (e2e/tampered-*).


def _vector_body(case: dict) -> bytes:
    body = bytes.fromhex(case["bodyHex"]) if "bodyHex" in case else case["body"].encode("utf-8")
    if "bodySize" in case:
        body += b" " * (case["bodySize"] - len(body))
    return body


def _load_cases() -> tuple[list[tuple[str, bytes, str]], list[tuple[str, bytes]], list[str]]:
    invalid, acceptable, low_order = [], [], []
    for group in vectors.load("envelope_invalid")["testGroups"]:
        for case in group["tests"]:
            name = f"tcId {case['tcId']}: {case['comment']}"
            if "LowOrderPublicKey" in case["flags"]:
                low_order.append(json.loads(case["body"])["ephemeralPublicKey"])
            elif group["stage"] == "open":
                continue
            elif case["result"] == "invalid":
                invalid.append((name, _vector_body(case), case["type"]))
            elif case["result"] == "acceptable":
                acceptable.append((name, _vector_body(case)))
    return invalid, acceptable, low_order


MALFORMED, ACCEPTABLE, LOW_ORDER_POINTS = _load_cases()


def _huge_body(sealed) -> bytes:
    return envelope.Envelope(sealed.ephemeral_public_key, sealed.nonce, bytes(2 << 20)).to_bytes()


@check("errors/acceptable-bodies", section="4.4", level=Level.MUST,
       requirement="Bodies the spec leaves open (uppercase hex, extra fields, a byte order mark) MAY be refused, "
                   "but MUST NOT get a 5xx.")
def acceptable_bodies(ctx: Context):
    for name, body in ACCEPTABLE:
        response = ctx.client.post_raw(body)
        require(response.status_code < 500, f"{name}: server error", expected="< 500", actual=response.status_code)


@check("errors/malformed-rejected", section="4.4", level=Level.MUST,
       requirement="Malformed envelopes (not JSON, wrong types, bad hex, wrong lengths) MUST get a 4xx, never a 5xx.")
def malformed_rejected(ctx: Context):
    for name, body, _ in MALFORMED:
        expect_unencrypted_error(ctx, body, name)


@check("errors/unencrypted-shape", section="4.1", level=Level.MUST,
       requirement='An unencrypted error MUST be {"error": {"message": str, "status": int, "type": str}} '
                   "with status equal to the HTTP status.")
def unencrypted_shape(ctx: Context):
    for name, body, _ in MALFORMED:
        status, error = expect_unencrypted_error(ctx, body, name)
        require(isinstance(error.get("message"), str) and isinstance(error.get("type"), str),
                f"{name}: message and type must be strings", expected="str, str", actual=error)
        require(error.get("status") == status, f"{name}: status field differs from HTTP status",
                expected=status, actual=error.get("status"))


@check("errors/type-codes", section="4.3", level=Level.SHOULD,
       requirement="Unencrypted errors SHOULD carry the type codes of the spec's table 1.")
def type_codes(ctx: Context):
    wrong = []
    for name, body, expected in MALFORMED:
        _, error = expect_unencrypted_error(ctx, body, name)
        if error.get("type") != expected:
            wrong.append((name, expected, error.get("type")))
    require(not wrong, "type codes differ from table 1", expected=[(n, e) for n, e, _ in wrong],
            actual=[(n, a) for n, _, a in wrong])


@check("errors/low-order-key", section="3.6", level=Level.MUST,
       requirement="A request whose ephemeralPublicKey has small order (all-zero shared secret) MUST get a 4xx.")
def low_order_key(ctx: Context):
    secret, sealed = ctx.client.seal(b'{"operation":"ping"}')
    for point in LOW_ORDER_POINTS:
        forged = envelope.Envelope(bytes.fromhex(point), sealed.nonce, sealed.ciphertext)
        expect_unencrypted_error(ctx, forged.to_bytes(), f"low-order key {point}")


@check("errors/huge-body", section="3.5", level=Level.MUST,
       requirement="A body over the size limit (1 MiB) MUST be refused with a 4xx (413 SHOULD) without harm.")
def huge_body(ctx: Context):
    secret, sealed = ctx.client.seal(b"{}")
    status, _ = expect_unencrypted_error(ctx, _huge_body(sealed), "2 MiB ciphertext")
    ctx.facts["huge_body_status"] = status


@check("errors/encrypted-after-decrypt", section="4.2", level=Level.MUST,
       requirement="Once a request decrypts, every error (not JSON, unknown operation, bad options) MUST be an "
                   "encrypted success:false reply with a code.")
def encrypted_after_decrypt(ctx: Context):
    cases = [
        ("plaintext not JSON", b"\x00not json"),
        ("plaintext not an object", b"[1, 2]"),
        ("operation missing", b"{}"),
        ("unknown operation", request_bytes("conformance:no-such-operation")),
        ("ping with a non-string message", request_bytes("ping", {"message": {"nested": True}})),
    ]
    for what, plaintext in cases:
        exchange = ctx.client.exchange(plaintext)
        require(exchange.status == 200 or exchange.response is not None, f"{what}: expected an encrypted reply",
                expected="encrypted reply", actual=exchange.status)
        expect_encrypted_error(exchange, what)


@check("errors/survives-bad-input", section="4.4", level=Level.MUST,
       requirement="After any amount of bad input the service MUST keep serving with nothing lost.")
def survives_bad_input(ctx: Context):
    account = expect_success(ctx.client.call("serviceAccount:create", options={"metadata": {"probe": "survive"}}),
                             "serviceAccount:create")
    for name, body, _ in MALFORMED * 2:
        expect_unencrypted_error(ctx, body, name)
    secret, sealed = ctx.client.seal(b"{}")
    for point in LOW_ORDER_POINTS:
        expect_unencrypted_error(ctx, envelope.Envelope(bytes.fromhex(point), sealed.nonce, sealed.ciphertext).to_bytes(), "low-order key")
    expect_unencrypted_error(ctx, _huge_body(sealed), "huge body")
    garbage = envelope.Envelope(sealed.ephemeral_public_key, sealed.nonce, bytes(len(sealed.ciphertext)))
    expect_unencrypted_error(ctx, garbage.to_bytes(), "forged ciphertext")
    data = expect_success(ctx.client.call("serviceAccount:get", auth={"adminKey": account["adminKey"]}),
                          "serviceAccount:get after bad input")
    require(data.get("id") == account["id"] and data.get("metadata") == {"probe": "survive"},
            "account changed after bad input", expected=account["id"], actual=data)
