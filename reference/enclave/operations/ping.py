"""``ping`` (spec §5.1): echo a message with the enclave's time."""

from __future__ import annotations

from ..errors import OperationCode, OperationError


def ping(ctx, request) -> dict:
    message = request.options.get("message", "")
    if not isinstance(message, str):
        raise OperationError(OperationCode.INVALID_INPUT, "options.message must be a string")
    return {"timestamp": int(ctx.now().timestamp() * 1000), "pong": message}
