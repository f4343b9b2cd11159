"""Nitro attestation documents: strict codec, strict verifier, mutation fuzzer (spec 8).

Public API::

    verify(document, *, roots=None, at, expect=Expectations()) -> VerifiedDocument
    unsafe_decode_document(document) -> DecodedDocument     # shape checks only, no trust
    AttestationError (.code: ErrorCode, .expected, .actual)

This package never imports the reference implementation.
"""

from .codec import (
    AttestationPayload,
    CoseSign1,
    DecodedDocument,
    encode_cose_sign1,
    encode_payload,
    sig_structure,
    unsafe_decode_cose_sign1,
    unsafe_decode_document,
    unsafe_decode_payload,
)
from .errors import AttestationError, ErrorCode
from .roots import AWS_NITRO_ROOT_G1_PEM, AWS_NITRO_ROOT_G1_SHA256, aws_nitro_root_g1, load_root
from .verifier import Expectations, VerifiedDocument, verify

__all__ = [
    "AWS_NITRO_ROOT_G1_PEM",
    "AWS_NITRO_ROOT_G1_SHA256",
    "AttestationError",
    "AttestationPayload",
    "CoseSign1",
    "DecodedDocument",
    "ErrorCode",
    "Expectations",
    "VerifiedDocument",
    "aws_nitro_root_g1",
    "encode_cose_sign1",
    "encode_payload",
    "load_root",
    "sig_structure",
    "unsafe_decode_cose_sign1",
    "unsafe_decode_document",
    "unsafe_decode_payload",
    "verify",
]
