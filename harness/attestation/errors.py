"""The attestation verifier's one exception type and its stable error codes (spec 8.6).

Every check of docs/spec/08-attestation.md section 8.6 has its own code. Codes are stable
strings: tests, mutants and reports refer to them, and the spec's table lists them.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(str, enum.Enum):
    """One code per named check, in the order the verifier runs them (spec 8.6)."""

    # 8.6.1 CBOR envelope
    CBOR_MALFORMED = "cbor-malformed"
    CBOR_TRAILING_BYTES = "cbor-trailing-bytes"
    CBOR_INDEFINITE_LENGTH = "cbor-indefinite-length"
    CBOR_FORBIDDEN_TAG = "cbor-forbidden-tag"
    CBOR_FORBIDDEN_ITEM = "cbor-forbidden-item"
    CBOR_TOO_DEEP = "cbor-too-deep"
    CBOR_DUPLICATE_KEY = "cbor-duplicate-key"
    COSE_STRUCTURE = "cose-structure"
    # 8.6.2 COSE_Sign1 headers and sizes
    COSE_PROTECTED = "cose-protected"
    COSE_UNPROTECTED = "cose-unprotected"
    COSE_PAYLOAD = "cose-payload"
    COSE_SIGNATURE_LENGTH = "cose-signature-length"
    # 8.6.3 payload fields
    PAYLOAD_NOT_MAP = "payload-not-map"
    PAYLOAD_MISSING_KEY = "payload-missing-key"
    PAYLOAD_UNKNOWN_KEY = "payload-unknown-key"
    PAYLOAD_KEY_ORDER = "payload-key-order"
    FIELD_MODULE_ID = "field-module-id"
    FIELD_DIGEST = "field-digest"
    FIELD_TIMESTAMP = "field-timestamp"
    FIELD_PCRS = "field-pcrs"
    FIELD_PCR_INDEX = "field-pcr-index"
    FIELD_PCR_LENGTH = "field-pcr-length"
    FIELD_CERTIFICATE = "field-certificate"
    FIELD_CABUNDLE = "field-cabundle"
    FIELD_PUBLIC_KEY = "field-public-key"
    FIELD_USER_DATA = "field-user-data"
    FIELD_NONCE = "field-nonce"
    # 8.6.4 / 8.6.5 certificate chain
    CERT_PARSE = "cert-parse"
    CHAIN_ROOT_MISMATCH = "chain-root-mismatch"
    CHAIN_DUPLICATE_CERT = "chain-duplicate-certificate"
    CERT_VERSION = "cert-version"
    CERT_SERIAL = "cert-serial"
    CERT_SIGNATURE_ALGORITHM = "cert-signature-algorithm"
    CERT_KEY_TYPE = "cert-key-type"
    CERT_ISSUER_MISMATCH = "cert-issuer-mismatch"
    CERT_NOT_YET_VALID = "cert-not-yet-valid"
    CERT_EXPIRED = "cert-expired"
    CERT_CA_CONSTRAINTS = "cert-ca-constraints"
    CERT_CA_SUBJECT = "cert-ca-subject"
    CERT_CA_KEY_USAGE = "cert-ca-key-usage"
    CERT_PATH_LENGTH = "cert-path-length"
    CERT_LEAF_CONSTRAINTS = "cert-leaf-constraints"
    CERT_LEAF_KEY_USAGE = "cert-leaf-key-usage"
    CERT_UNKNOWN_CRITICAL = "cert-unknown-critical-extension"
    CERT_SIGNATURE = "cert-signature"
    CHAIN_PATH_VALIDATION = "chain-path-validation"
    # 8.6.6 document signature
    COSE_SIGNATURE = "cose-signature"
    # 8.6.7 caller's policy
    POLICY_PCRS = "policy-pcrs"
    POLICY_DEBUG_MODE = "policy-debug-mode"
    POLICY_NONCE = "policy-nonce"
    POLICY_STALE = "policy-stale"
    POLICY_FUTURE = "policy-future"
    POLICY_PUBLIC_KEY = "policy-public-key"
    POLICY_USER_DATA = "policy-user-data"


class AttestationError(Exception):
    """The document was rejected. ``code`` names the failed check; ``expected``/``actual`` say how.

    This is the only exception :func:`harness.attestation.verify` and the ``unsafe_decode_*``
    functions raise for any input bytes; anything else escaping them is a bug (spec 8.7).
    """

    def __init__(self, code: ErrorCode, message: str, *, expected: Any = None, actual: Any = None):
        super().__init__(f"[{code.value}] {message}")
        self.code = code
        self.message = message
        self.expected = expected
        self.actual = actual

    def __repr__(self) -> str:
        return (
            f"AttestationError(code={self.code.value!r}, message={self.message!r}, "
            f"expected={self.expected!r}, actual={self.actual!r})"
        )
