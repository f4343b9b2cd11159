"""The reference Vault's errors: one root, two layers, stable codes (docs/spec/04-errors.md).

* :class:`EnvelopeError` happens before a request could be decrypted, so no encrypted reply is
  possible: the host answers it as plain JSON ``{"error": {message, status, type}}`` (spec §4.1).
* :class:`OperationError` happens after a successful decrypt; it is answered *inside* the envelope
  as ``{"success": false, "data": null, "error": {code, message, details?}}`` (spec §4.2).
"""

from __future__ import annotations

import enum


class VaultError(Exception):
    """Root of every error the reference raises on purpose."""


class EnvelopeCode(str, enum.Enum):
    """Unencrypted error types (spec §4.3, table 1)."""

    INVALID_JSON = "invalid_json"
    INVALID_ENVELOPE = "invalid_envelope"
    INVALID_HEX = "invalid_hex"
    INVALID_LENGTH = "invalid_length"
    LOW_ORDER_PUBLIC_KEY = "low_order_public_key"
    DECRYPTION_FAILED = "decryption_failed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    INVALID_INPUT = "invalid_input"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    SERVICE_UNAVAILABLE = "service_unavailable"


_STATUS = {
    EnvelopeCode.PAYLOAD_TOO_LARGE: 413,
    EnvelopeCode.NOT_FOUND: 404,
    EnvelopeCode.METHOD_NOT_ALLOWED: 405,
    EnvelopeCode.SERVICE_UNAVAILABLE: 503,
}


class EnvelopeError(VaultError):
    def __init__(self, code: EnvelopeCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return _STATUS.get(self.code, 400)

    def to_json(self) -> dict:
        return {"error": {"message": self.message, "status": self.status, "type": self.code.value}}


class OperationCode(str, enum.Enum):
    """Encrypted error codes (spec §4.3, table 2)."""

    SERIALIZATION_ERROR = "serialization_error"
    INVALID_INPUT = "invalid_input"
    UNKNOWN_OPERATION = "unknown_operation"
    UNSUPPORTED = "unsupported_operation"
    AUTH_MISSING = "auth_missing"
    AUTH_INVALID_ADMIN_KEY = "auth_invalid_admin_key"
    AUTH_INVALID_ROTATION_CODE = "auth_invalid_rotation_code"
    AUTH_INVALID_ACCESS_TOKEN = "auth_invalid_access_token"
    AUTH_UNSUPPORTED_METHOD = "auth_unsupported_method"
    AUTH_UNSUPPORTED_OPERATION = "auth_unsupported_operation"
    AUTH_INSUFFICIENT_SCOPE = "auth_insufficient_scope"
    NOT_FOUND = "not_found"
    REPLAYED_REQUEST = "replayed_request"  # opt-in replay window (spec 10.7.1)
    INTERNAL_SERVER_ERROR = "internal_server_error"


class OperationError(VaultError):
    def __init__(self, code: OperationCode, message: str, details: str | dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def to_json(self) -> dict:
        error: dict = {"code": self.code.value, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"success": False, "data": None, "error": error}
