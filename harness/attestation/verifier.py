"""Strict verifier for Nitro attestation documents (spec 8.5, 8.6).

``verify(document, roots=..., at=..., expect=...)`` runs every check of spec 8.6 in order and
raises :class:`AttestationError` naming the first one that fails. The caller supplies the trust
roots (AWS Nitro root G1 by default), the verification time and the policy expectations; nothing
here reads a clock or the network.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID, SignatureAlgorithmOID

from .codec import AttestationPayload, sig_structure, unsafe_decode_cose_sign1, unsafe_decode_payload
from .errors import AttestationError, ErrorCode
from .roots import aws_nitro_root_g1, load_root

_ES384 = ec.ECDSA(hashes.SHA384())
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
#: The only extensions whose rules the verifier enforces (8.6.5); any other critical one is refused.
_PROCESSED = (ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE)


@dataclass(frozen=True, kw_only=True)
class Expectations:
    """The caller's policy (check group 8.6.7). ``None`` means "not checked".

    - ``pcrs``: allowed PCR sets; the document passes if, for at least one set, every listed
      index is present with exactly that value (several sets allow rolling deploys).
    - ``allow_debug``: accept documents whose PCR0 is all zero (debug-mode enclaves).
    - ``nonce``, ``public_key``, ``user_data``: exact values the document must carry.
    - ``max_age``: the timestamp may be at most this old at the verification time;
      ``max_future``: and at most this far ahead of it (clock skew).
    """

    pcrs: Sequence[Mapping[int, bytes]] | None = None
    allow_debug: bool = False
    nonce: bytes | None = None
    public_key: bytes | None = None
    user_data: bytes | None = None
    max_age: _dt.timedelta | None = _dt.timedelta(minutes=5)
    max_future: _dt.timedelta = _dt.timedelta(seconds=30)


@dataclass(frozen=True, kw_only=True)
class VerifiedDocument:
    """What a document proved, after every check passed."""

    module_id: str
    timestamp_ms: int
    pcrs: Mapping[int, bytes]
    public_key: bytes | None
    user_data: bytes | None
    nonce: bytes | None
    debug_mode: bool
    root_sha256: str
    chain: tuple[x509.Certificate, ...] = field(repr=False)  # root first, leaf last

    @property
    def timestamp(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(self.timestamp_ms / 1000, _dt.timezone.utc)


def _fail(code: ErrorCode, message: str, *, expected: Any = None, actual: Any = None):
    raise AttestationError(code, message, expected=expected, actual=actual)


@dataclass
class _Cert:
    der: bytes
    obj: x509.Certificate
    version: x509.Version
    sig_oid: x509.ObjectIdentifier
    key: Any
    issuer_der: bytes
    subject_der: bytes
    serial_content: bytes
    inner_alg_der: bytes
    outer_alg_der: bytes
    not_before: _dt.datetime
    not_after: _dt.datetime
    basic: x509.Extension | None
    key_usage: x509.KeyUsage | None
    unknown_critical: tuple[str, ...]
    name: str


def _der_item(buf: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end) of the DER item at ``pos``."""
    tag, first = buf[pos], buf[pos + 1]
    pos += 2
    if first < 0x80:
        return tag, pos, pos + first
    n = first & 0x7F
    length = int.from_bytes(buf[pos : pos + n], "big")
    return tag, pos + n, pos + n + length


def _outer_algorithm(der: bytes) -> bytes:
    """The DER of the outer Certificate.signatureAlgorithm (the one after the TBSCertificate)."""
    _, pos, _ = _der_item(der, 0)  # Certificate SEQUENCE
    _, _, tbs_end = _der_item(der, pos)
    _, _, alg_end = _der_item(der, tbs_end)
    return der[tbs_end:alg_end]


def _tbs_fields(tbs: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """(serialNumber content octets, signature AlgorithmIdentifier DER, issuer DER, subject DER)."""
    _, pos, _ = _der_item(tbs, 0)
    fields = []
    while len(fields) < 5:
        tag, start, end = _der_item(tbs, pos)
        if not (tag == 0xA0 and not fields):  # skip the optional [0] version
            fields.append((tbs[pos:end], tbs[start:end]))
        pos = end
    (_, serial), (alg, _), (issuer, _), _validity, (subject, _) = fields
    return serial, alg, issuer, subject


def _tbs_names(tbs: bytes) -> tuple[bytes, bytes]:
    """The issuer and subject Names of a TBSCertificate, as DER bytes.

    cryptography only offers names as parsed ``Name`` objects, which costs more than the rest
    of the certificate checks together; issuer chaining (8.6.5) compares the encodings instead,
    the exact-match case of RFC 5280 7.1. The input already parsed as a certificate, so it is
    well-formed DER."""
    _, pos, _ = _der_item(tbs, 0)  # TBSCertificate SEQUENCE
    fields = []
    while len(fields) < 5:
        tag, start, end = _der_item(tbs, pos)
        if not (tag == 0xA0 and not fields):  # skip the optional [0] version
            fields.append(tbs[pos:end])
        pos = end
    _serial, _alg, issuer, _validity, subject = fields
    return issuer, subject


def _show_name(der: bytes) -> str:
    """A name for an error message. Names are compared as DER and never interpreted (8.6.5), so
    one may not parse: then its hex is shown."""
    try:
        from asn1crypto.x509 import Name

        return Name.load(der).human_friendly
    except Exception:  # noqa: BLE001 - display only
        return der.hex()


def _parse_cert(der: bytes, name: str, obj: x509.Certificate | None = None) -> _Cert:
    """Parse every field the checks read, eagerly, so parse errors surface here (8.6.4)."""
    # cryptography parses lazily and raises several exception types (ValueError, InvalidVersion,
    # DuplicateExtension, UnsupportedAlgorithm, ...) for malformed DER; at this boundary any of
    # them means the same thing: the certificate does not parse.
    try:
        cert = obj if obj is not None else x509.load_der_x509_certificate(der)
        serial_content, inner_alg_der, issuer_der, subject_der = _tbs_fields(cert.tbs_certificate_bytes)
        outer_alg_der = _outer_algorithm(cert.public_bytes(Encoding.DER) if obj is not None else der)
        exts = cert.extensions
        try:
            basic = exts.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            basic = None
        try:
            ku = exts.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            ku = None
        return _Cert(
            der=der,
            obj=cert,
            version=cert.version,
            sig_oid=cert.signature_algorithm_oid,
            key=cert.public_key(),
            issuer_der=issuer_der,
            subject_der=subject_der,
            serial_content=serial_content,
            inner_alg_der=inner_alg_der,
            outer_alg_der=outer_alg_der,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            basic=basic,
            key_usage=ku,
            unknown_critical=tuple(e.oid.dotted_string for e in exts if e.critical and e.oid not in _PROCESSED),
            name=name,
        )
    except Exception as exc:
        _fail(ErrorCode.CERT_PARSE, f"{name} does not parse as X.509", actual=f"{type(exc).__name__}: {exc}")
        raise AssertionError("unreachable")  # pragma: no cover


def _check_cert(c: _Cert, at: _dt.datetime, *, is_ca: bool, cas_below: int) -> None:
    """Checks 8.6.5 on one certificate, signatures excepted."""
    if c.version != x509.Version.v3:
        _fail(ErrorCode.CERT_VERSION, f"{c.name} is not X.509 v3", expected="v3", actual=c.version.name)
    # RFC 5280 4.1.2.2: a positive INTEGER of at most 20 octets (DER: a leading 0x00 only before a
    # high bit, so 21 octets are allowed only when the first is that padding zero).
    serial = c.serial_content
    magnitude = serial[1:] if serial[:1] == b"\x00" else serial
    if not magnitude or serial[0] & 0x80 or not any(magnitude) or len(magnitude) > 20:
        _fail(ErrorCode.CERT_SERIAL, f"{c.name} serial number is not a positive integer of at most 20 octets",
              expected="1..20 octets, positive", actual=serial.hex())
    if c.sig_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA384:
        _fail(ErrorCode.CERT_SIGNATURE_ALGORITHM, f"{c.name} is not signed with ecdsa-with-SHA384",
              expected=SignatureAlgorithmOID.ECDSA_WITH_SHA384.dotted_string, actual=c.sig_oid.dotted_string)
    if c.inner_alg_der != c.outer_alg_der:  # RFC 5280 4.1.1.2: the two identifiers MUST be identical
        _fail(ErrorCode.CERT_SIGNATURE_ALGORITHM, f"{c.name} TBSCertificate.signature differs from signatureAlgorithm",
              expected=c.outer_alg_der.hex(), actual=c.inner_alg_der.hex())
    if not isinstance(c.key, ec.EllipticCurvePublicKey) or not isinstance(c.key.curve, ec.SECP384R1):
        actual = c.key.curve.name if isinstance(c.key, ec.EllipticCurvePublicKey) else type(c.key).__name__
        _fail(ErrorCode.CERT_KEY_TYPE, f"{c.name} key is not P-384", expected="secp384r1", actual=actual)
    if at < c.not_before:
        _fail(ErrorCode.CERT_NOT_YET_VALID, f"{c.name} is not yet valid", expected=f">= {c.not_before.isoformat()}",
              actual=at.isoformat())
    if at > c.not_after:
        _fail(ErrorCode.CERT_EXPIRED, f"{c.name} has expired", expected=f"<= {c.not_after.isoformat()}",
              actual=at.isoformat())
    bc = c.basic
    if is_ca:
        if bc is None or not bc.critical or not bc.value.ca:
            _fail(ErrorCode.CERT_CA_CONSTRAINTS, f"{c.name} lacks critical basicConstraints CA:TRUE",
                  expected="critical CA:TRUE", actual=None if bc is None else (bc.critical, bc.value.ca))
        if c.subject_der == b"\x30\x00":  # RFC 5280 4.1.2.6: a CA's subject is never empty
            _fail(ErrorCode.CERT_CA_SUBJECT, f"{c.name} is a CA with an empty subject", expected="non-empty subject",
                  actual="empty")
        if c.key_usage is None or not c.key_usage.key_cert_sign:
            _fail(ErrorCode.CERT_CA_KEY_USAGE, f"{c.name} lacks keyUsage keyCertSign", expected="keyCertSign",
                  actual=None if c.key_usage is None else str(c.key_usage))
        if bc.value.path_length is not None and cas_below > bc.value.path_length:
            _fail(ErrorCode.CERT_PATH_LENGTH, f"{c.name} pathLen exceeded", expected=f"<= {bc.value.path_length}",
                  actual=cas_below)
    else:
        if bc is None or bc.value.ca:
            _fail(ErrorCode.CERT_LEAF_CONSTRAINTS, f"{c.name} must carry basicConstraints CA:FALSE",
                  expected="CA:FALSE", actual=None if bc is None else "CA:TRUE")
        if c.key_usage is None or not c.key_usage.digital_signature:
            _fail(ErrorCode.CERT_LEAF_KEY_USAGE, f"{c.name} lacks keyUsage digitalSignature",
                  expected="digitalSignature", actual=None if c.key_usage is None else str(c.key_usage))
        if c.key_usage.key_cert_sign:  # RFC 5280 4.2.1.3: keyCertSign only with CA:TRUE
            _fail(ErrorCode.CERT_LEAF_KEY_USAGE, f"{c.name} is not a CA but asserts keyCertSign",
                  expected="no keyCertSign", actual=str(c.key_usage))
    if c.unknown_critical:  # RFC 5280 4.2: a critical extension the verifier does not process is fatal
        _fail(ErrorCode.CERT_UNKNOWN_CRITICAL, f"{c.name} has a critical extension this verifier does not process",
              expected=[o.dotted_string for o in _PROCESSED], actual=list(c.unknown_critical))


def _root_table(roots: Sequence[bytes | x509.Certificate] | None) -> dict[bytes, x509.Certificate]:
    certs = [aws_nitro_root_g1()] if roots is None else [load_root(r) for r in roots]
    if not certs:
        raise ValueError("at least one trust root is required")
    return {c.public_bytes(Encoding.DER): c for c in certs}


def _verify_chain(p: AttestationPayload, roots: dict[bytes, x509.Certificate], at: _dt.datetime, *,
                  path_validation: bool) -> list[_Cert]:
    """Checks 8.6.4 and 8.6.5: root pinning, per-certificate rules, signatures, optional RFC 5280."""
    root_der = p.cabundle[0]
    if root_der not in roots:
        _fail(ErrorCode.CHAIN_ROOT_MISMATCH, "cabundle[0] is not a pinned root",
              expected=[hashlib.sha256(d).hexdigest() for d in roots],
              actual=hashlib.sha256(root_der).hexdigest())
    ders = [*p.cabundle, p.certificate]
    if len(set(ders)) != len(ders):
        dup = next(i for i, d in enumerate(ders) if ders.index(d) != i)
        _fail(ErrorCode.CHAIN_DUPLICATE_CERT, "a certificate appears twice in the chain", expected="distinct",
              actual=f"entry {dup} repeats entry {ders.index(ders[dup])}")
    chain = [_parse_cert(root_der, "root", roots[root_der])]
    for i, der in enumerate(p.cabundle[1:], start=1):
        chain.append(_parse_cert(der, f"cabundle[{i}]"))
    chain.append(_parse_cert(p.certificate, "certificate"))
    n = len(chain)
    for i, c in enumerate(chain):  # root first: each certificate's issuer is the one above it
        if i > 0 and c.issuer_der != chain[i - 1].subject_der:
            _fail(ErrorCode.CERT_ISSUER_MISMATCH, f"{c.name} issuer is not {chain[i - 1].name}'s subject",
                  expected=_show_name(chain[i - 1].subject_der), actual=_show_name(c.issuer_der))
        _check_cert(c, at, is_ca=i < n - 1, cas_below=max(0, n - 2 - i))
    for parent, child in zip(chain, chain[1:]):  # one ECDSA verification per link
        try:
            parent.key.verify(child.obj.signature, child.obj.tbs_certificate_bytes, _ES384)
        except InvalidSignature:
            _fail(ErrorCode.CERT_SIGNATURE, f"{child.name} is not signed by {parent.name}", expected="valid",
                  actual="invalid signature")
    if path_validation:
        # Optional second opinion: pyca/cryptography's RFC 5280 path validation (Web PKI CA profile,
        # permissive leaf profile, which accepts AWS's chain). It repeats the four verifications.
        # Needs cryptography >= 45 (ExtensionPolicy), hence imported only here.
        from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store, VerificationError

        verifier = (
            PolicyBuilder()
            .store(Store([chain[0].obj]))
            .time(at)
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all())
            .build_client_verifier()
        )
        try:
            verifier.verify(chain[-1].obj, [c.obj for c in chain[1:-1]])
        except VerificationError as exc:
            _fail(ErrorCode.CHAIN_PATH_VALIDATION, "RFC 5280 path validation refused the chain", actual=str(exc))
    return chain


def _check_policy(p: AttestationPayload, at: _dt.datetime, expect: Expectations) -> bool:
    """Checks 8.6.7. Returns the debug-mode flag."""
    pcr0 = p.pcrs.get(0)
    debug = pcr0 is None or not any(pcr0)
    if debug and not expect.allow_debug:
        _fail(ErrorCode.POLICY_DEBUG_MODE, "PCR0 is all zero (debug-mode enclave)", expected="measured PCR0",
              actual=None if pcr0 is None else pcr0.hex())
    if expect.pcrs is not None:
        if not any(all(p.pcrs.get(i) == v for i, v in allowed.items()) for allowed in expect.pcrs):
            wanted = sorted({i for allowed in expect.pcrs for i in allowed})
            _fail(ErrorCode.POLICY_PCRS, "PCRs match no allowed set",
                  expected=[{i: v.hex() for i, v in s.items()} for s in expect.pcrs],
                  actual={i: p.pcrs[i].hex() for i in wanted if i in p.pcrs})
    if expect.nonce is not None and (p.nonce is None or not hmac.compare_digest(p.nonce, expect.nonce)):
        _fail(ErrorCode.POLICY_NONCE, "nonce differs from the challenge", expected=expect.nonce.hex(),
              actual=None if p.nonce is None else p.nonce.hex())
    at_ms = (at - _EPOCH) // _dt.timedelta(milliseconds=1)  # exact: no float rounding at the edges
    if expect.max_age is not None and at_ms - p.timestamp > expect.max_age / _dt.timedelta(milliseconds=1):
        _fail(ErrorCode.POLICY_STALE, "document is older than the freshness window",
              expected=f"timestamp >= {at_ms - int(expect.max_age / _dt.timedelta(milliseconds=1))}",
              actual=p.timestamp)
    if p.timestamp - at_ms > expect.max_future / _dt.timedelta(milliseconds=1):
        _fail(ErrorCode.POLICY_FUTURE, "document timestamp is in the future",
              expected=f"timestamp <= {at_ms + int(expect.max_future / _dt.timedelta(milliseconds=1))}",
              actual=p.timestamp)
    if expect.public_key is not None and p.public_key != expect.public_key:
        _fail(ErrorCode.POLICY_PUBLIC_KEY, "public_key is not the expected enclave key",
              expected=expect.public_key.hex(), actual=None if p.public_key is None else p.public_key.hex())
    if expect.user_data is not None and p.user_data != expect.user_data:
        _fail(ErrorCode.POLICY_USER_DATA, "user_data differs", expected=expect.user_data.hex(),
              actual=None if p.user_data is None else p.user_data.hex())
    return debug


def verify(
    document: bytes,
    *,
    roots: Sequence[bytes | x509.Certificate] | None = None,
    at: _dt.datetime,
    expect: Expectations = Expectations(),
    path_validation: bool = False,
) -> VerifiedDocument:
    """Verify an attestation document; raise :class:`AttestationError` on the first failed check.

    ``roots``: pinned trust roots (PEM/DER bytes or certificates); default the AWS Nitro root G1.
    ``at``: the verification time (timezone-aware), used for certificate validity and freshness.
    ``path_validation``: also run pyca/cryptography's RFC 5280 path validation after the named
    chain checks (a second opinion that doubles the chain's signature work).
    """
    if not isinstance(at, _dt.datetime) or at.tzinfo is None:
        raise TypeError("'at' must be a timezone-aware datetime")
    table = _root_table(roots)
    cose = unsafe_decode_cose_sign1(document)  # 8.6.1, 8.6.2
    payload, _ = unsafe_decode_payload(cose.payload)  # 8.6.3
    chain = _verify_chain(payload, table, at, path_validation=path_validation)  # 8.6.4, 8.6.5
    r, s = int.from_bytes(cose.signature[:48], "big"), int.from_bytes(cose.signature[48:], "big")
    try:  # 8.6.6: over the protected and payload bytes exactly as received
        chain[-1].key.verify(encode_dss_signature(r, s), sig_structure(cose.protected, cose.payload), _ES384)
    except InvalidSignature:
        _fail(ErrorCode.COSE_SIGNATURE, "document signature does not verify with the leaf key", expected="valid",
              actual="invalid")
    debug = _check_policy(payload, at, expect)  # 8.6.7
    return VerifiedDocument(
        module_id=payload.module_id,
        timestamp_ms=payload.timestamp,
        pcrs=dict(payload.pcrs),
        public_key=payload.public_key,
        user_data=payload.user_data,
        nonce=payload.nonce,
        debug_mode=debug,
        root_sha256=hashlib.sha256(chain[0].der).hexdigest(),
        chain=tuple(c.obj for c in chain),
    )
