"""Sans-IO codec for Nitro attestation documents (spec 8.2, 8.3, checks 8.6.1-8.6.3).

Decoding is strict: one CBOR item, no trailing bytes, definite lengths, no tags (except an
outer COSE_Sign1 tag 18), no floats or simple values other than false/true/null, no duplicate map
keys, the nine payload keys in AWS's order with the right types and sizes.

The ``unsafe_decode_*`` functions check shape only: they verify no signature and no certificate.
Use :func:`harness.attestation.verify` to trust a document.

Encoding produces documents byte-shaped like the ones the AWS NSM emits: untagged, protected
header ``a1 01 38 22``, unprotected ``{}``, nine payload keys in order, absent optionals as null,
the timestamp in the 8-byte unsigned form.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cbor2

from .errors import AttestationError, ErrorCode

#: The only protected header accepted and emitted: ``{1: -35}`` (alg: ES384).
PROTECTED_ES384 = bytes.fromhex("a1013822")
#: Spec 8.3: field order of the payload map, as AWS emits it.
PAYLOAD_KEYS = (
    "module_id",
    "digest",
    "timestamp",
    "pcrs",
    "certificate",
    "cabundle",
    "public_key",
    "user_data",
    "nonce",
)
SIGNATURE_LENGTH = 96
PAYLOAD_MAX = 16384
CERT_MAX = 1024
PUBLIC_KEY_MAX = 1024
#: Spec 8.3: AWS's CDDL allows 1024, its validation text 512; we choose the stricter 512.
USER_DATA_MAX = 512
NONCE_MAX = 512
PCR_COUNT_MAX = 32
PCR_LENGTHS = (32, 48, 64)
MAX_DEPTH = 8
_TAG_COSE_SIGN1 = 0xD2  # tag 18 in its one-byte head


@dataclass(frozen=True)
class CoseSign1:
    """The four parts of a COSE_Sign1 as received (bytes are never re-encoded)."""

    protected: bytes
    unprotected: dict
    payload: bytes
    signature: bytes
    tagged: bool = False


@dataclass(frozen=True, kw_only=True)
class AttestationPayload:
    """The nine fields of the attestation document payload (spec 8.3)."""

    module_id: str
    digest: str
    timestamp: int
    pcrs: Mapping[int, bytes]
    certificate: bytes
    cabundle: tuple[bytes, ...]
    public_key: bytes | None = None
    user_data: bytes | None = None
    nonce: bytes | None = None


@dataclass(frozen=True)
class DecodedDocument:
    cose: CoseSign1
    payload: AttestationPayload
    raw_payload_map: dict = field(repr=False, default_factory=dict)


def _fail(code: ErrorCode, message: str, *, expected: Any = None, actual: Any = None):
    raise AttestationError(code, message, expected=expected, actual=actual)


# cbor2 rejects duplicate keys and indefinite lengths when asked, but it silently decodes tags
# (a tag-2 bignum becomes a plain int, tag 1 a datetime), accepts floats and simple values, and
# reports no item end. This walker does only those structural checks, by hand, before cbor2
# builds the values.
def _scan(buf: bytes, pos: int, depth: int) -> int:
    """Return the offset just past the well-formed item at ``pos`` (checks 8.6.1)."""
    if depth > MAX_DEPTH:
        _fail(ErrorCode.CBOR_TOO_DEEP, "CBOR nesting too deep", expected=MAX_DEPTH, actual=depth)
    end = len(buf)
    if pos >= end:
        _fail(ErrorCode.CBOR_MALFORMED, "truncated CBOR item", expected="an item", actual="end of input")
    ib = buf[pos]
    major, info = ib >> 5, ib & 0x1F
    pos += 1
    if info == 31:
        if major in (2, 3, 4, 5):
            _fail(ErrorCode.CBOR_INDEFINITE_LENGTH, "indefinite-length item", expected="definite length", actual=hex(ib))
        _fail(ErrorCode.CBOR_MALFORMED, "unexpected break or reserved head", actual=hex(ib))
    if info in (28, 29, 30):
        _fail(ErrorCode.CBOR_MALFORMED, "reserved additional information", actual=hex(ib))
    if info < 24:
        arg = info
    else:
        n = 1 << (info - 24)
        if pos + n > end:
            _fail(ErrorCode.CBOR_MALFORMED, "truncated CBOR head", expected=n, actual=end - pos)
        arg = int.from_bytes(buf[pos : pos + n], "big")
        pos += n
    if major in (0, 1):
        return pos
    if major in (2, 3):
        if arg > end - pos:
            _fail(ErrorCode.CBOR_MALFORMED, "truncated string", expected=arg, actual=end - pos)
        if major == 3:
            try:
                bytes(buf[pos : pos + arg]).decode("utf-8")
            except UnicodeDecodeError:
                _fail(ErrorCode.CBOR_MALFORMED, "text string is not UTF-8")
        return pos + arg
    if major == 4:
        if arg > end - pos:  # every item takes at least one byte
            _fail(ErrorCode.CBOR_MALFORMED, "truncated array", expected=arg, actual=end - pos)
        for _ in range(arg):
            pos = _scan(buf, pos, depth + 1)
        return pos
    if major == 5:
        if 2 * arg > end - pos:
            _fail(ErrorCode.CBOR_MALFORMED, "truncated map", expected=2 * arg, actual=end - pos)
        for _ in range(arg):
            if pos < end and buf[pos] >> 5 > 3:
                _fail(ErrorCode.CBOR_FORBIDDEN_ITEM, "map key is not an integer or string", actual=hex(buf[pos]))
            pos = _scan(buf, pos, depth + 1)
            pos = _scan(buf, pos, depth + 1)
        return pos
    if major == 6:
        _fail(ErrorCode.CBOR_FORBIDDEN_TAG, "CBOR tag not allowed here", expected="no tag", actual=arg)
    # major 7: only false, true, null
    if info in (20, 21, 22):
        return pos
    _fail(ErrorCode.CBOR_FORBIDDEN_ITEM, "float, undefined or simple value", expected="false/true/null", actual=hex(ib))
    raise AssertionError("unreachable")  # pragma: no cover


def _strict_loads(buf: bytes, *, allow_cose_tag: bool) -> tuple[Any, bool]:
    """Decode exactly one CBOR item (checks 8.6.1); return (value, had_tag_18)."""
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        _fail(ErrorCode.CBOR_MALFORMED, "input is not bytes", actual=type(buf).__name__)
    buf = bytes(buf)
    start = 0
    tagged = False
    if allow_cose_tag and buf[:1] == bytes([_TAG_COSE_SIGN1]):
        start, tagged = 1, True
    end = _scan(buf, start, 0)
    if end != len(buf):
        _fail(ErrorCode.CBOR_TRAILING_BYTES, "bytes after the CBOR item", expected=end, actual=len(buf))
    decoder = cbor2.CBORDecoder(
        io.BytesIO(buf[start:end]), allow_indefinite=False, allow_duplicate_keys=False, max_depth=MAX_DEPTH + 2
    )
    try:
        value = decoder.decode()
    except cbor2.CBORDecodeError as exc:
        # The scan above proved the item well formed; what cbor2 still rejects is a repeated key.
        if "uplicate" in str(exc):
            _fail(ErrorCode.CBOR_DUPLICATE_KEY, "duplicate map key", actual=str(exc))
        _fail(ErrorCode.CBOR_MALFORMED, "CBOR decoding failed", actual=str(exc))
    return value, tagged


def unsafe_decode_cose_sign1(data: bytes) -> CoseSign1:
    """Decode and shape-check the COSE_Sign1 envelope (8.6.1, 8.6.2). Verifies nothing."""
    value, tagged = _strict_loads(data, allow_cose_tag=True)
    if type(value) is not list or len(value) != 4:
        _fail(
            ErrorCode.COSE_STRUCTURE,
            "COSE_Sign1 must be an array of 4",
            expected="array(4)",
            actual=f"array({len(value)})" if type(value) is list else type(value).__name__,
        )
    protected, unprotected, payload, signature = value
    if type(protected) is not bytes or protected != PROTECTED_ES384:
        _fail(ErrorCode.COSE_PROTECTED, "protected header must be exactly {1: -35}", expected=PROTECTED_ES384.hex(),
              actual=protected.hex() if type(protected) is bytes else type(protected).__name__)
    if type(unprotected) is not dict or unprotected:
        _fail(ErrorCode.COSE_UNPROTECTED, "unprotected header must be an empty map", expected={}, actual=unprotected)
    if type(payload) is not bytes or not 1 <= len(payload) <= PAYLOAD_MAX:
        _fail(ErrorCode.COSE_PAYLOAD, "payload must be a byte string of 1..16384 bytes", expected=f"1..{PAYLOAD_MAX}",
              actual=len(payload) if type(payload) is bytes else type(payload).__name__)
    if type(signature) is not bytes or len(signature) != SIGNATURE_LENGTH:
        _fail(ErrorCode.COSE_SIGNATURE_LENGTH, "signature must be 96 bytes (r || s)", expected=SIGNATURE_LENGTH,
              actual=len(signature) if type(signature) is bytes else type(signature).__name__)
    return CoseSign1(protected, unprotected, payload, signature, tagged)


def _bstr(value: Any, code: ErrorCode, name: str, lo: int, hi: int, *, nullable: bool) -> bytes | None:
    if value is None and nullable:
        return None
    if type(value) is not bytes:
        _fail(code, f"{name} must be a byte string" + (" or null" if nullable else ""), expected="bytes",
              actual=type(value).__name__)
    if not lo <= len(value) <= hi:
        _fail(code, f"{name} must be {lo}..{hi} bytes", expected=f"{lo}..{hi}", actual=len(value))
    return value


def unsafe_decode_payload(payload: bytes) -> tuple[AttestationPayload, dict]:
    """Decode and check the payload map's keys, types and sizes (8.6.3). Verifies nothing."""
    value, _ = _strict_loads(payload, allow_cose_tag=False)
    if type(value) is not dict:
        _fail(ErrorCode.PAYLOAD_NOT_MAP, "payload must be a map", expected="map", actual=type(value).__name__)
    keys = list(value)
    for k in PAYLOAD_KEYS:
        if k not in value:
            _fail(ErrorCode.PAYLOAD_MISSING_KEY, f"payload lacks {k!r}", expected=k, actual=keys)
    for k in keys:
        if k not in PAYLOAD_KEYS:
            _fail(ErrorCode.PAYLOAD_UNKNOWN_KEY, "unknown payload key", expected=list(PAYLOAD_KEYS), actual=k)
    if tuple(keys) != PAYLOAD_KEYS:
        _fail(ErrorCode.PAYLOAD_KEY_ORDER, "payload keys out of order", expected=list(PAYLOAD_KEYS), actual=keys)

    module_id = value["module_id"]
    if type(module_id) is not str or not module_id:
        _fail(ErrorCode.FIELD_MODULE_ID, "module_id must be non-empty text", expected="text", actual=module_id)
    digest = value["digest"]
    if digest != "SHA384" or type(digest) is not str:
        _fail(ErrorCode.FIELD_DIGEST, "digest must be 'SHA384'", expected="SHA384", actual=digest)
    timestamp = value["timestamp"]
    if type(timestamp) is not int or not 0 < timestamp < 2**64:
        _fail(ErrorCode.FIELD_TIMESTAMP, "timestamp must be a positive uint64 (ms)", expected="1..2**64-1",
              actual=timestamp)
    pcrs = value["pcrs"]
    if type(pcrs) is not dict or not 1 <= len(pcrs) <= PCR_COUNT_MAX:
        _fail(ErrorCode.FIELD_PCRS, "pcrs must be a map of 1..32 entries", expected=f"1..{PCR_COUNT_MAX}",
              actual=len(pcrs) if type(pcrs) is dict else type(pcrs).__name__)
    for idx, pcr in pcrs.items():
        if type(idx) is not int or not 0 <= idx < PCR_COUNT_MAX:
            _fail(ErrorCode.FIELD_PCR_INDEX, "PCR index must be an integer 0..31", expected="0..31", actual=idx)
        if type(pcr) is not bytes or len(pcr) not in PCR_LENGTHS:
            _fail(ErrorCode.FIELD_PCR_LENGTH, f"PCR{idx} must be 32, 48 or 64 bytes", expected=PCR_LENGTHS,
                  actual=len(pcr) if type(pcr) is bytes else type(pcr).__name__)
    certificate = _bstr(value["certificate"], ErrorCode.FIELD_CERTIFICATE, "certificate", 1, CERT_MAX, nullable=False)
    cabundle = value["cabundle"]
    if type(cabundle) is not list or not cabundle:
        _fail(ErrorCode.FIELD_CABUNDLE, "cabundle must be a non-empty array", expected="array(>=1)",
              actual=len(cabundle) if type(cabundle) is list else type(cabundle).__name__)
    for cert in cabundle:
        _bstr(cert, ErrorCode.FIELD_CABUNDLE, "cabundle entry", 1, CERT_MAX, nullable=False)
    public_key = _bstr(value["public_key"], ErrorCode.FIELD_PUBLIC_KEY, "public_key", 1, PUBLIC_KEY_MAX, nullable=True)
    user_data = _bstr(value["user_data"], ErrorCode.FIELD_USER_DATA, "user_data", 0, USER_DATA_MAX, nullable=True)
    nonce = _bstr(value["nonce"], ErrorCode.FIELD_NONCE, "nonce", 0, NONCE_MAX, nullable=True)
    doc = AttestationPayload(
        module_id=module_id,
        digest=digest,
        timestamp=timestamp,
        pcrs=dict(pcrs),
        certificate=certificate,
        cabundle=tuple(cabundle),
        public_key=public_key,
        user_data=user_data,
        nonce=nonce,
    )
    return doc, value


def unsafe_decode_document(data: bytes) -> DecodedDocument:
    """Decode a whole document with every shape check (8.6.1-8.6.3). Verifies no signature,
    no certificate and no policy: never trust what this returns."""
    cose = unsafe_decode_cose_sign1(data)
    payload, raw = unsafe_decode_payload(cose.payload)
    return DecodedDocument(cose, payload, raw)


# --- encoding (spec 8.2, 8.3) ---------------------------------------------------------------

def _uint64(value: int) -> bytes:
    # cbor2 always picks the shortest head; AWS writes the timestamp as a full uint64.
    return b"\x1b" + struct.pack(">Q", value)


def encode_payload(p: AttestationPayload) -> bytes:
    """The payload map exactly as AWS shapes it: 9 keys in order, nulls, uint64 timestamp."""
    parts = [b"\xa9"]  # map(9)
    for key in PAYLOAD_KEYS:
        parts.append(cbor2.dumps(key))
        val = getattr(p, key)
        if key == "timestamp":
            parts.append(_uint64(val))
        elif key == "cabundle":
            parts.append(cbor2.dumps(list(val)))
        elif key == "pcrs":
            parts.append(cbor2.dumps({int(i): bytes(v) for i, v in sorted(val.items())}))
        else:
            parts.append(cbor2.dumps(val))
    return b"".join(parts)


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """The COSE Sig_structure ``["Signature1", protected, h'', payload]`` (RFC 9052 4.4)."""
    return cbor2.dumps(["Signature1", protected, b"", payload])


def encode_cose_sign1(protected: bytes, payload: bytes, signature: bytes, *, tagged: bool = False) -> bytes:
    body = cbor2.dumps([protected, {}, payload, signature])
    return (bytes([_TAG_COSE_SIGN1]) + body) if tagged else body
