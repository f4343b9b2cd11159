"""The simulated NSM's dev PKI, shaped like AWS's (spec 8.4).

root (CA, no pathLen) -> regional (pathLen 2) -> zonal (pathLen 1) -> instance (pathLen 0)
-> leaf (CA:FALSE, non-critical digitalSignature, 3 hours). P-384 keys, ecdsa-with-SHA384, the
same extensions as the real AWS chain. The root and the three CAs are generated once and kept in
the caller's state directory; expired (or nearly expired) CAs are re-issued from the root. The
root certificate is published as ``root.pem`` so that verifiers can pin it. It is a development
root: it is never the AWS root, and a verifier pinning AWS rejects its documents.
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .errors import NsmStateError

_HOUR = _dt.timedelta(hours=1)
# P-384 group order: private keys are drawn from the injected randomness, not OpenSSL's.
_P384_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973
_ORG = "Nitro Vault Reference (development, not AWS)"


@dataclass(frozen=True)
class _Level:
    name: str
    path_length: int | None
    lifetime: _dt.timedelta
    key_ids: bool  # SKI (and AKI below the root), as AWS puts on root, regional and zonal
    crl: bool
    key_usage_ca_full: bool  # digitalSignature+keyCertSign+cRLSign, or keyCertSign alone


ROOT = _Level("root", None, 30 * 365 * 24 * _HOUR, True, False, True)
CAS = (
    _Level("regional", 2, 20 * 24 * _HOUR, True, True, True),
    _Level("zonal", 1, 5 * 24 * _HOUR, True, True, True),
    _Level("instance", 0, 24 * _HOUR, False, False, False),
)
LEAF_LIFETIME = 3 * _HOUR


@dataclass
class _Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "dev"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


class DevPki:
    """Loads (or creates, once) the dev chain under ``state_dir`` and issues leaves."""

    def __init__(self, state_dir: str | os.PathLike, *, rng: Callable[[int], bytes], now: _dt.datetime):
        self._dir = Path(state_dir)
        self._rng = rng
        self._lock = threading.Lock()
        self._dir.mkdir(parents=True, exist_ok=True)
        self._root = self._load("root") or self._create_root(now)
        self._cas: list[_Issued | None] = [self._load(level.name) for level in CAS]
        self._leaf: _Issued | None = None

    # --- keys, serials, files -----------------------------------------------------------------
    def _new_key(self) -> ec.EllipticCurvePrivateKey:
        scalar = int.from_bytes(self._rng(64), "big") % (_P384_N - 1) + 1
        return ec.derive_private_key(scalar, ec.SECP384R1())

    def _serial(self) -> int:
        return (int.from_bytes(self._rng(16), "big") >> 1) | 1  # positive, at most 127 bits

    def _write(self, name: str, data: bytes, private: bool) -> None:
        path = self._dir / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    def _save(self, name: str, issued: _Issued) -> None:
        key_pem = issued.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self._write(f"{name}.key.pem", key_pem, True)
        self._write(f"{name}.pem", issued.cert.public_bytes(serialization.Encoding.PEM), False)

    def _load(self, name: str) -> _Issued | None:
        cert_path, key_path = self._dir / f"{name}.pem", self._dir / f"{name}.key.pem"
        if not cert_path.exists() and not key_path.exists():
            return None
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise NsmStateError(f"dev PKI state for {name!r} is unreadable: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
            raise NsmStateError(f"dev PKI key for {name!r} does not match its certificate")
        return _Issued(cert, key)

    # --- issuing ------------------------------------------------------------------------------
    def _build(self, *, subject: x509.Name, key, issuer: _Issued | None, not_before: _dt.datetime,
               lifetime: _dt.timedelta, ca: bool, path_length: int | None, key_ids: bool, crl: bool,
               full_ca_usage: bool, crl_name: str = "") -> x509.Certificate:
        signer_key = issuer.key if issuer else key
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.cert.subject if issuer else subject)
            .public_key(key.public_key())
            .serial_number(self._serial())
            .not_valid_before(not_before)
            .not_valid_after(not_before + lifetime)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        )
        if key_ids and issuer is not None:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False)
        if key_ids:
            b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        if ca:
            b = b.add_extension(
                x509.KeyUsage(
                    digital_signature=full_ca_usage, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=full_ca_usage,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
        else:  # the leaf: non-critical digitalSignature (+ nonRepudiation), as AWS issues it
            b = b.add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=True, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=False,
            )
        if crl:
            # AWS's regional and zonal CAs name a CRL; ours names one that cannot resolve.
            b = b.add_extension(
                x509.CRLDistributionPoints(
                    [x509.DistributionPoint([x509.UniformResourceIdentifier(f"http://crl.invalid/{crl_name}.crl")],
                                            None, None, None)]
                ),
                critical=False,
            )
        try:  # RFC 6979: the chain is reproducible from the injected randomness alone
            return b.sign(signer_key, hashes.SHA384(), ecdsa_deterministic=True)
        except TypeError:  # pragma: no cover - cryptography < 44
            return b.sign(signer_key, hashes.SHA384())

    def _create_root(self, now: _dt.datetime) -> _Issued:
        key = self._new_key()
        cert = self._build(subject=_name("dev.nitro-enclaves"), key=key, issuer=None, not_before=now - _HOUR,
                           lifetime=ROOT.lifetime, ca=True, path_length=None, key_ids=True, crl=False,
                           full_ca_usage=True)
        root = _Issued(cert, key)
        self._save("root", root)
        return root

    @staticmethod
    def _fresh(cert: x509.Certificate, now: _dt.datetime, lifetime: _dt.timedelta) -> bool:
        """Valid now and for at least a quarter of its lifetime more."""
        return cert.not_valid_before_utc <= now and now + lifetime / 4 <= cert.not_valid_after_utc

    def _ensure(self, now: _dt.datetime) -> None:
        if not self._root.cert.not_valid_before_utc <= now <= self._root.cert.not_valid_after_utc:
            raise NsmStateError("the dev root is not valid at this time; delete the state directory to start over")
        parent, reissue = self._root, False
        for i, level in enumerate(CAS):
            current = self._cas[i]
            if reissue or current is None or not self._fresh(current.cert, now, level.lifetime):
                reissue = True
                key = self._new_key()
                region_tag = self._rng(8).hex()
                cert = self._build(subject=_name(f"{region_tag}.{level.name}.dev.nitro-enclaves"), key=key,
                                   issuer=parent, not_before=now - _dt.timedelta(minutes=5), lifetime=level.lifetime,
                                   ca=True, path_length=level.path_length, key_ids=level.key_ids, crl=level.crl,
                                   full_ca_usage=level.key_usage_ca_full, crl_name=level.name)
                current = _Issued(cert, key)
                self._cas[i] = current
                self._save(level.name, current)
            parent = current
        if reissue:
            self._leaf = None

    def leaf(self, now: _dt.datetime, module_id: str) -> tuple[_Issued, list[bytes]]:
        """The current leaf (re-issued every hour, valid 3 hours) and the cabundle, root first."""
        with self._lock:
            self._ensure(now)
            leaf = self._leaf
            if leaf is None or not (leaf.cert.not_valid_before_utc <= now < leaf.cert.not_valid_before_utc + _HOUR):
                key = self._new_key()
                cert = self._build(subject=_name(f"{module_id}.dev.nitro-enclaves"), key=key, issuer=self._cas[-1],
                                   not_before=now - _dt.timedelta(seconds=60), lifetime=LEAF_LIFETIME, ca=False,
                                   path_length=None, key_ids=False, crl=False, full_ca_usage=False)
                leaf = self._leaf = _Issued(cert, key)
            bundle = [c.cert.public_bytes(serialization.Encoding.DER) for c in [self._root, *self._cas]]
            return leaf, bundle

    def root_pem(self) -> bytes:
        return self._root.cert.public_bytes(serialization.Encoding.PEM)
