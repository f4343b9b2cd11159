"""Errors of the NSM layer (spec 8.4): one root, a stable code each, under the reference's root."""

from __future__ import annotations

import enum

from ..errors import VaultError


class NsmCode(str, enum.Enum):
    INPUT_TOO_LARGE = "nsm_input_too_large"
    INVALID_INPUT = "nsm_invalid_input"
    INVALID_CONFIG = "nsm_invalid_config"
    STATE = "nsm_state"
    DEVICE = "nsm_device"


class NsmError(VaultError):
    """Root of every NSM error."""

    code: NsmCode = NsmCode.DEVICE

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NsmInputTooLarge(NsmError):
    """An attestation input exceeds its cap (spec 8.3): ``field``, ``limit``, ``actual`` say which."""

    code = NsmCode.INPUT_TOO_LARGE

    def __init__(self, field: str, limit: int, actual: int):
        super().__init__(f"{field} is {actual} bytes; the limit is {limit}")
        self.field, self.limit, self.actual = field, limit, actual


class NsmInvalidInput(NsmError):
    """An attestation input has the wrong type (or an empty public_key)."""

    code = NsmCode.INVALID_INPUT

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class NsmConfigError(NsmError):
    """The simulated NSM was configured with impossible PCRs or options."""

    code = NsmCode.INVALID_CONFIG


class NsmStateError(NsmError):
    """The dev PKI state directory is unusable (unreadable, inconsistent, root expired)."""

    code = NsmCode.STATE


class NsmDeviceError(NsmError):
    """The real NSM (``/dev/nsm``) failed: ioctl errno, an NSM error answer, or a bad response."""

    code = NsmCode.DEVICE

    def __init__(self, message: str, *, errno: int | None = None, nsm_error: str | None = None):
        super().__init__(message)
        self.errno, self.nsm_error = errno, nsm_error
