"""Small helpers shared by the suites."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from .registry import CheckFailed, CheckUnimplemented


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
    return exchange.data


def expect_encrypted_error(exchange, what: str, *, code: str | None = None) -> str:
    """The exchange must be an encrypted ``success: false`` reply (spec §4.2); returns its code."""
    require(exchange.unencrypted_error is None, f"{what}: expected an encrypted error", expected="encrypted success:false", actual=exchange.unencrypted_error)
    reply = exchange.reply or {}
    require(reply.get("success") is False, f"{what}: expected success:false", expected=False, actual=reply.get("success"))
    error = reply.get("error")
    require(isinstance(error, dict) and isinstance(error.get("code"), str) and isinstance(error.get("message"), str),
            f"{what}: error must carry a string code and message", expected="{code, message}", actual=error)
    require(reply.get("data") is None, f"{what}: data must be null on error", expected=None, actual=reply.get("data"))
    if code is not None:
        require(error["code"] == code, f"{what}: wrong error code", expected=code, actual=error["code"])
    return error["code"]


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
    return response.status_code, error
