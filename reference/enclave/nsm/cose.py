"""The reference's own attestation-document encoder (spec 8.2, 8.3), byte-shaped like AWS's:
untagged COSE_Sign1, protected ``a1 01 38 22``, unprotected ``{}``, nine payload keys in order,
absent optionals as null, the timestamp as a full uint64. (The harness has its own codec; the two
never share code.)"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

import cbor2

PROTECTED = b"\xa1\x01\x38\x22"  # {1: -35}: alg ES384


def _head_uint64(value: int) -> bytes:
    # cbor2 always writes the shortest head; the NSM writes the timestamp as a full uint64.
    return b"\x1b" + struct.pack(">Q", value)


def encode_payload(
    *,
    module_id: str,
    timestamp_ms: int,
    pcrs: Mapping[int, bytes],
    certificate: bytes,
    cabundle: Sequence[bytes],
    public_key: bytes | None,
    user_data: bytes | None,
    nonce: bytes | None,
) -> bytes:
    out = bytearray(b"\xa9")  # map of 9
    for key, value in (
        ("module_id", module_id),
        ("digest", "SHA384"),
        ("timestamp", None),
        ("pcrs", {i: pcrs[i] for i in sorted(pcrs)}),
        ("certificate", certificate),
        ("cabundle", list(cabundle)),
        ("public_key", public_key),
        ("user_data", user_data),
        ("nonce", nonce),
    ):
        out += cbor2.dumps(key)
        out += _head_uint64(timestamp_ms) if key == "timestamp" else cbor2.dumps(value)
    return bytes(out)


def to_be_signed(payload: bytes) -> bytes:
    """RFC 9052 Sig_structure for COSE_Sign1 with empty external AAD."""
    return cbor2.dumps(["Signature1", PROTECTED, b"", payload])


def encode_sign1(payload: bytes, signature: bytes) -> bytes:
    return cbor2.dumps([PROTECTED, {}, payload, signature])
