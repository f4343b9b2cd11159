"""Small helpers shared by the suites."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from hypothesis import HealthCheck, Phase, seed, settings

from .registry import CheckFailed, CheckUnimplemented


def seeded(ctx, test):
    """``test`` (a @given function or a state machine class) seeded with the run's ``--seed``: the
    CLI always sets one (a random one when none is given) and records it, so any run's property
    checks can be replayed exactly."""
    run_seed = ctx.options.get("seed")
    return seed(run_seed)(test) if run_seed is not None else test


def property_settings(ctx, default: int, **extra) -> settings:
    """Hypothesis settings for a property check against a live target: ``--examples`` or ``default``
    examples, no deadline, no example database, no shrinking (every step costs round trips to the
    target; the first failure is reported as found)."""
    # ``derandomize`` (the project's own tests of the checks): one fixed draw per check, not a seed.
    return settings(max_examples=ctx.options.get("examples") or default, deadline=None, database=None,
                    derandomize=ctx.options.get("derandomize", False), suppress_health_check=list(HealthCheck),
                    phases=[Phase.explicit, Phase.reuse, Phase.generate], **extra)


def property_check(ctx, default: int, **extra):
    """Decorator for a @given function: ``property_settings`` and the run's seed."""
    def decorate(test):
        return seeded(ctx, property_settings(ctx, default, **extra)(test))
    return decorate


def require(condition: bool, message: str, *, expected=None, actual=None) -> None:
    if not condition:
        raise CheckFailed(message, expected=expected, actual=actual)


def expect_success(exchange, what: str) -> dict:
    """The exchange must be an encrypted success reply; returns its data."""
    if exchange.unencrypted_error is not None:
        raise CheckFailed(f"{what}: unencrypted error", expected="encrypted success", actual=exchange.unencrypted_error)
    if exchange.error_code in ("unknown_operation", "unsupported_operation"):
        raise CheckUnimplemented(f"{what}: target reports {exchange.error_code}")
    require(
        exchange.ok,
        f"{what}: the Vault refused",
        expected="success: true",
        actual=(exchange.reply or {}).get("error"),
    )
    problem = reply_shape_problem(exchange.reply)
    require(problem is None, f"{what}: {problem}", expected="exactly success, data, error", actual=exchange.reply)
    return exchange.data


def expect_encrypted_error(exchange, what: str, *, code: str | None = None) -> str:
    """The exchange must be an encrypted ``success: false`` reply (spec §4.2); returns its code."""
    require(exchange.unencrypted_error is None, f"{what}: expected an encrypted error", expected="encrypted success:false", actual=exchange.unencrypted_error)
    reply = exchange.reply or {}
    require(reply.get("success") is False, f"{what}: expected success:false", expected=False, actual=reply.get("success"))
    problem = reply_shape_problem(reply)
    require(problem is None, f"{what}: {problem}", expected="exactly success, data, error", actual=reply)
    error = reply.get("error")
    require(isinstance(error, dict) and isinstance(error.get("code"), str) and isinstance(error.get("message"), str),
            f"{what}: error must carry a string code and message", expected="{code, message}", actual=error)
    require(reply.get("data") is None, f"{what}: data must be null on error", expected=None, actual=reply.get("data"))
    if code is not None:
        require(error["code"] == code, f"{what}: wrong error code", expected=code, actual=error["code"])
    return error["code"]


def expect_refusal(exchange, what: str, code: str | None = None) -> str:
    """An encrypted refusal (spec §4.2) of a request the operation must refuse, with ``code`` when
    given; ``unknown_operation`` means the operation is missing (UNIMPLEMENTED, not FAILED)."""
    if exchange.ok:
        raise CheckFailed(f"{what}: the Vault accepted it", expected="an encrypted error", actual=exchange.data)
    actual = expect_encrypted_error(exchange, what)
    if actual in ("unknown_operation", "unsupported_operation"):
        raise CheckUnimplemented(f"{what}: target reports {actual}")
    if code is not None:
        require(actual == code, f"{what}: wrong error code", expected=code, actual=actual)
    return actual


def is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def is_iso8601(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True
    except ValueError:
        return False


def request_bytes(operation: str, options=None, auth=None) -> bytes:
    request = {"operation": operation}
    if auth is not None:
        request["auth"] = auth
    if options is not None:
        request["options"] = options
    return json.dumps(request).encode()


def expect_unencrypted_error(ctx, body: bytes, what: str) -> tuple[int, dict]:
    """POST raw bytes; the answer must be a 4xx unencrypted error and nothing else (spec §4.1, §4.4)."""
    response = ctx.client.post_raw(body)
    require(400 <= response.status_code < 500, f"{what}: expected a 4xx", expected="4xx", actual=response.status_code)
    try:
        answer = response.json()
    except ValueError:
        raise CheckFailed(f"{what}: answer is not JSON", expected="JSON error", actual=response.text[:120]) from None
    error = answer.get("error") if isinstance(answer, dict) else None
    require(isinstance(error, dict) and "ciphertext" not in answer, f"{what}: expected an unencrypted error and nothing else",
            expected='{"error": {...}}', actual=str(answer)[:200])
    problem = unencrypted_shape_problem(answer, response.status_code)
    require(problem is None, f"{what}: {problem}", expected='exactly {"error": {message, status, type}}',
            actual=str(answer)[:200])
    return response.status_code, error


# ---- exact shapes (spec §3.1, §4.1, §4.2) ---------------------------------------------------

ENVELOPE_MEMBERS = frozenset({"ephemeralPublicKey", "nonce", "ciphertext"})
REPLY_MEMBERS = frozenset({"success", "data", "error"})
UNENCRYPTED_REQUIRED = frozenset({"message", "status", "type"})


def reply_shape_problem(reply, binding: str | None = None) -> str | None:
    """What is wrong with a decrypted reply's shape (spec §4.2), or None.

    ``binding``: the ``responseBinding`` the request carried (10.7.2); the reply may then echo it,
    exactly, as a fourth member. Without one in the request, no fourth member is allowed."""
    if not isinstance(reply, dict):
        return f"the reply is not a JSON object: {str(reply)[:80]}"
    if binding is not None and "responseBinding" in reply:
        if reply["responseBinding"] != binding:
            return f"responseBinding {str(reply['responseBinding'])[:70]!r} is not the request's"
        reply = {k: v for k, v in reply.items() if k != "responseBinding"}
    if set(reply) != REPLY_MEMBERS:
        return f"the reply's members are {sorted(reply)}, not exactly {sorted(REPLY_MEMBERS)}"
    if reply["success"] is True:
        return None if reply["error"] is None else f"a success carries error {reply['error']!r}"
    if reply["success"] is not False:
        return f"success is {reply['success']!r}, not a boolean"
    if reply["data"] is not None:
        return f"a failure carries data {str(reply['data'])[:80]}"
    error = reply["error"]
    if not isinstance(error, dict):
        return f"a failure's error is {error!r}, not an object"
    if not {"code", "message"} <= set(error) <= {"code", "message", "details"}:
        return f"the error's members are {sorted(error)}: code and message, and optionally details, only"
    if not (isinstance(error["code"], str) and isinstance(error["message"], str)):
        return "the error's code and message must be strings"
    details = error.get("details")
    if "details" in error and not (isinstance(details, str) or (
            isinstance(details, dict) and set(details) == {"reason"} and isinstance(details["reason"], str))):
        return f"details must be a string or {{\"reason\": string}}, not {str(details)[:80]}"
    return None


def unencrypted_shape_problem(body, http_status: int) -> str | None:
    """What is wrong with an unencrypted error (spec §4.1), or None."""
    if not isinstance(body, dict):
        return f"the body is not a JSON object: {str(body)[:80]}"
    if set(body) != {"error"}:
        return f"the top-level members are {sorted(body)}, not exactly ['error']"
    error = body["error"]
    if not isinstance(error, dict) or not UNENCRYPTED_REQUIRED <= set(error) <= UNENCRYPTED_REQUIRED | {"details"}:
        return f"error must hold message, status and type (and optionally details) only, not {str(error)[:120]}"
    if not (isinstance(error["message"], str) and isinstance(error["type"], str)
            and type(error["status"]) is int and isinstance(error.get("details", ""), str)):
        return "message, type (and details) must be strings and status an integer"
    if error["status"] != http_status:
        return f"status {error['status']} differs from the HTTP status {http_status}"
    if not (400 <= http_status < 500 or http_status == 503):
        return f"an unencrypted error with HTTP {http_status}: only 4xx, or 503 for an unreachable enclave"
    return None


def bound_exchange(client, operation: str, options: dict | None = None):
    """An exchange whose request carries a fresh ``responseBinding`` (spec 5.2, 10.7.2), recorded in
    ``client.bindings`` so that the final checks know its reply may echo it; (exchange, binding)."""
    import os

    binding = os.urandom(32).hex()
    request = {"operation": operation, "responseBinding": binding}
    if options is not None:
        request["options"] = options
    plaintext = json.dumps(request).encode()
    secret, sealed = client.seal(plaintext)
    client.bindings[sealed.ephemeral_public_key] = binding
    return client.read_reply(plaintext, secret, sealed, client.post_raw(sealed.to_bytes())), binding


def top_up_record(ctx) -> None:
    """Make sure the run's record holds every kind of answer the final checks judge, so that they
    mean something even when run alone: successes, encrypted errors, a replay, unencrypted errors,
    routing answers. Once per run."""
    from ..protocol import envelope
    from ..protocol.client import ENVELOPE_PATH, ProtocolViolation

    if ctx.facts.get("_record_topped_up"):
        return
    ctx.facts["_record_topped_up"] = True
    client = ctx.client

    def attempt(action):
        try:
            action()
        except ProtocolViolation:
            pass  # the answer is in the record all the same; the final checks judge it

    for i in range(3):
        attempt(lambda i=i: client.call("ping", options={"message": f"record {i}"}))
    # A refused credential, so a Vault that quotes the secret it refused is seen even in a short run.
    refused = {"adminKey": "sa_adm_" + "conformance-refused-credential-0123456789"}
    for plaintext in (request_bytes("conformance:no-such-operation"), request_bytes("conformance:no-such-operation"),
                      b"[1]", b"{}", request_bytes("ping", {"message": 7}),
                      request_bytes("serviceAccount:get", auth=refused)):
        attempt(lambda p=plaintext: client.exchange(p))
    # Bound requests (10.7.2), a success and a failure: a Vault that echoes a binding must echo it exactly.
    for operation in ("ping", "conformance:no-such-operation"):
        attempt(lambda o=operation: bound_exchange(client, o, {"message": "bound"}))
    replayed = request_bytes("ping", {"message": "replayed"})
    secret, sealed = client.seal(replayed)
    for _ in range(2):
        attempt(lambda: client.read_reply(replayed, secret, sealed, client.post_raw(sealed.to_bytes())))
    client.post_raw(b"not json")
    client.post_raw(b"{}")
    client.post_raw(envelope.Envelope(sealed.ephemeral_public_key, sealed.nonce, bytes(len(sealed.ciphertext))).to_bytes())
    client.post_raw(envelope.Envelope(bytes(32), sealed.nonce, sealed.ciphertext).to_bytes())
    client.get("/conformance/no-such-path")
    client.request("DELETE", ENVELOPE_PATH)
