"""A throw-away test PKI shaped like AWS's, for the harness's own mutants (spec 8.7).

root (CA, no pathLen) -> regional (pathLen 2) -> zonal (1) -> instance (0) -> leaf (CA:FALSE,
non-critical digitalSignature, 3 hours), P-384 and ecdsa-with-SHA384 throughout, with the same
extensions as the real AWS chain. Every knob of :func:`make_cert` exists so the mutation engine
can break exactly one property. Written independently of the reference's dev PKI.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, replace
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from .codec import PROTECTED_ES384, encode_cose_sign1, sig_structure

UNKNOWN_EXTENSION_OID = x509.ObjectIdentifier("1.3.6.1.4.1.55555.8.7")


def new_key(kind: str = "p384"):
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(kind)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Harness"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


@dataclass(frozen=True, kw_only=True)
class CertSpec:
    """Everything that shapes one certificate; defaults are an AWS-like CA."""

    cn: str
    ca: bool = True
    path_length: int | None = None
    basic_constraints: bool = True
    basic_critical: bool = True
    key_usage: frozenset[str] | None = frozenset({"digital_signature", "key_cert_sign", "crl_sign"})
    key_usage_critical: bool = True
    key_ids: bool = True  # subject/authority key identifiers
    not_before: _dt.datetime
    not_after: _dt.datetime
    hash_alg: Any = None  # default SHA-384
    version1: bool = False
    unknown_critical: bool = False  # an extension no verifier knows, marked critical
    unknown_non_critical: bool = False
    extra: tuple[tuple[Any, bool], ...] = ()  # further (extension value, critical) pairs


_KU_FIELDS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def make_cert(spec: CertSpec, key, issuer_name: x509.Name, issuer_key, *, issuer_cert: x509.Certificate | None = None,
              serial: int | None = None) -> x509.Certificate:
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(spec.cn))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(spec.not_before)
        .not_valid_after(spec.not_after)
    )
    if not spec.version1:
        if spec.basic_constraints:
            b = b.add_extension(x509.BasicConstraints(ca=spec.ca, path_length=spec.path_length), spec.basic_critical)
        if spec.key_usage is not None:
            ku = {f: (f in spec.key_usage) for f in _KU_FIELDS}
            b = b.add_extension(x509.KeyUsage(**ku), spec.key_usage_critical)
        if spec.key_ids:
            b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            if issuer_cert is not None:
                b = b.add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
                )
    for flag, critical in ((spec.unknown_critical, True), (spec.unknown_non_critical, False)):
        if flag:
            b = b.add_extension(x509.UnrecognizedExtension(UNKNOWN_EXTENSION_OID, b"\x05\x00"), critical)
    for value, critical in spec.extra:
        b = b.add_extension(value, critical)
    hash_alg = spec.hash_alg or hashes.SHA384()
    cert = b.sign(issuer_key, hash_alg)
    if spec.version1:
        cert = _as_version1(cert, issuer_key, hash_alg)
    return cert


def _as_version1(cert: x509.Certificate, issuer_key, hash_alg) -> x509.Certificate:
    """Rewrite a (extension-less) certificate as X.509 v1: drop the [0] version field, re-sign.
    cryptography's builder always writes v3, so this edits the DER by hand (asn1crypto)."""
    from asn1crypto import x509 as a509

    parsed = a509.Certificate.load(cert.public_bytes(Encoding.DER))
    tbs = parsed["tbs_certificate"]
    tbs["version"] = "v1"
    tbs_der = tbs.dump(force=True)
    sig = issuer_key.sign(tbs_der, ec.ECDSA(hash_alg))
    parsed["signature_value"] = sig
    return x509.load_der_x509_certificate(parsed.dump(force=True))


def ca_specs(now: _dt.datetime) -> list[CertSpec]:
    """The AWS shape: root, regional, zonal, instance."""
    h = _dt.timedelta(hours=1)
    return [
        CertSpec(cn="root.test.nitro-enclaves", path_length=None, key_ids=True,
                 not_before=now - 365 * 24 * h, not_after=now + 30 * 365 * 24 * h),
        CertSpec(cn="regional.test.nitro-enclaves", path_length=2,
                 not_before=now - 240 * h, not_after=now + 240 * h),
        CertSpec(cn="zonal.test.nitro-enclaves", path_length=1,
                 not_before=now - 48 * h, not_after=now + 72 * h),
        CertSpec(cn="instance.test.nitro-enclaves", path_length=0, key_ids=False,
                 key_usage=frozenset({"key_cert_sign"}), not_before=now - h, not_after=now + 23 * h),
    ]


def leaf_spec(now: _dt.datetime) -> CertSpec:
    return CertSpec(cn="enclave.test.nitro-enclaves", ca=False, key_ids=False,
                    key_usage=frozenset({"digital_signature", "content_commitment"}), key_usage_critical=False,
                    not_before=now - _dt.timedelta(minutes=1), not_after=now + _dt.timedelta(hours=3, minutes=-1))


@dataclass
class TestPki:
    """A built chain: ``certs``/``keys`` root first, leaf last."""

    __test__ = False  # not a pytest class

    certs: list[x509.Certificate]
    keys: list[Any]
    now: _dt.datetime

    @classmethod
    def generate(cls, now: _dt.datetime | None = None, *, specs: list[CertSpec] | None = None,
                 key_kinds: list[str] | None = None, signer_override: dict[int, Any] | None = None,
                 issuer_override: dict[int, x509.Name] | None = None) -> TestPki:
        """Build root..leaf. ``specs`` replaces the five specs; ``key_kinds`` the key types;
        ``signer_override[i]`` signs certificate i with another key; ``issuer_override[i]``
        writes another issuer name into certificate i."""
        now = now or _dt.datetime.now(_dt.timezone.utc)
        specs = specs or (ca_specs(now) + [leaf_spec(now)])
        kinds = key_kinds or ["p384"] * len(specs)
        keys = [new_key(k) for k in kinds]
        certs: list[x509.Certificate] = []
        for i, spec in enumerate(specs):
            issuer_key = keys[i - 1] if i else keys[0]
            issuer_name = _name(specs[i - 1].cn) if i else _name(spec.cn)
            if signer_override and i in signer_override:
                issuer_key = signer_override[i]
            if issuer_override and i in issuer_override:
                issuer_name = issuer_override[i]
            certs.append(make_cert(spec, keys[i], issuer_name, issuer_key, issuer_cert=certs[i - 1] if i else None))
        return cls(certs, keys, now)

    @property
    def root_pem(self) -> bytes:
        return self.certs[0].public_bytes(Encoding.PEM)

    @property
    def cabundle(self) -> list[bytes]:
        return [c.public_bytes(Encoding.DER) for c in self.certs[:-1]]

    @property
    def leaf_der(self) -> bytes:
        return self.certs[-1].public_bytes(Encoding.DER)

    @property
    def leaf_key(self):
        return self.keys[-1]


def raw_signature(key, message: bytes) -> bytes:
    """ES384 over ``message`` as COSE wants it: r || s, 48 bytes each."""
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA384())))
    return r.to_bytes(48, "big") + s.to_bytes(48, "big")


def sign_payload(payload: bytes, key, *, protected: bytes = PROTECTED_ES384, tagged: bool = False) -> bytes:
    return encode_cose_sign1(protected, payload, raw_signature(key, sig_structure(protected, payload)), tagged=tagged)


__all__ = ["CertSpec", "TestPki", "ca_specs", "leaf_spec", "make_cert", "new_key", "raw_signature", "replace",
           "sign_payload"]
