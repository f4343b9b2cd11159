"""NSM access for the enclave (spec 8.4): a simulated NSM with a dev PKI, and the real ``/dev/nsm``.

Both backends offer the same interface (:class:`Nsm`)::

    attest(user_data=None, nonce=None, public_key=None, *, now=None) -> bytes   # COSE_Sign1
    root_pem() -> bytes                                                        # root to pin

This package never imports the harness.
"""

from __future__ import annotations

import datetime as _dt
from typing import Protocol

from .device import AWS_NITRO_ROOT_G1_PEM, DeviceNsm
from .errors import (
    NsmCode,
    NsmConfigError,
    NsmDeviceError,
    NsmError,
    NsmInputTooLarge,
    NsmInvalidInput,
    NsmStateError,
)
from .limits import NONCE_MAX, PUBLIC_KEY_MAX, USER_DATA_MAX
from .simulated import DEBUG_ZEROED, SimulatedNsm


class Nsm(Protocol):
    def attest(
        self,
        user_data: bytes | None = None,
        nonce: bytes | None = None,
        public_key: bytes | None = None,
        *,
        now: _dt.datetime | None = None,
    ) -> bytes: ...

    def root_pem(self) -> bytes: ...


__all__ = [
    "AWS_NITRO_ROOT_G1_PEM",
    "DEBUG_ZEROED",
    "NONCE_MAX",
    "PUBLIC_KEY_MAX",
    "USER_DATA_MAX",
    "DeviceNsm",
    "Nsm",
    "NsmCode",
    "NsmConfigError",
    "NsmDeviceError",
    "NsmError",
    "NsmInputTooLarge",
    "NsmInvalidInput",
    "NsmStateError",
    "SimulatedNsm",
]
