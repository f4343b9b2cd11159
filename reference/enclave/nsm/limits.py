"""Input caps for attestation requests (spec 8.3), shared by the simulated and the real NSM."""

from __future__ import annotations

from .errors import NsmInputTooLarge, NsmInvalidInput

#: Spec 8.3: AWS's CDDL allows 1024 bytes of user_data, its validation rules 512; we cap at 512
#: so that every strict verifier following AWS's validation rules accepts our documents.
USER_DATA_MAX = 512
NONCE_MAX = 512
PUBLIC_KEY_MAX = 1024


def check_inputs(user_data: bytes | None, nonce: bytes | None, public_key: bytes | None) -> None:
    for field, value, lo, hi in (
        ("user_data", user_data, 0, USER_DATA_MAX),
        ("nonce", nonce, 0, NONCE_MAX),
        ("public_key", public_key, 1, PUBLIC_KEY_MAX),
    ):
        if value is None:
            continue
        if not isinstance(value, (bytes, bytearray)):
            raise NsmInvalidInput(field, f"must be bytes or None, not {type(value).__name__}")
        if len(value) > hi:
            raise NsmInputTooLarge(field, hi, len(value))
        if len(value) < lo:
            raise NsmInvalidInput(field, f"must be at least {lo} byte(s); pass None to omit it")
