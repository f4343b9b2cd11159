"""EIF signing (docs/spec/09-eif.md §9.6): PCR0 signed in an untagged COSE_Sign1.

CBOR shapes follow serde's derive of the image-format crate's structs, where ``Vec<u8>`` is an
array of unsigned integers (not a byte string):

* signed payload ``PcrInfo``: ``{"register_index": i, "register_value": [48 uints]}``;
* signature section ``Vec<PcrSignature>``: ``[{"signing_certificate": [PEM bytes as uints],
  "signature": [COSE_Sign1 bytes as uints]}]``.

The COSE_Sign1 itself (RFC 8152 §4.2) is ``[protected bstr, {} , payload bstr, signature bstr]``,
protected ``{1: alg}`` chosen by the key's curve, signature the raw ``r || s``.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from . import errors
from .errors import ErrorCode

# COSE algorithm ids (RFC 8152 §8.1) per curve, with hash and scalar size in bytes.
_ALGS: dict[str, tuple[int, hashes.HashAlgorithm, int]] = {
    "secp256r1": (-7, hashes.SHA256(), 32),
    "secp384r1": (-35, hashes.SHA384(), 48),
    "secp521r1": (-36, hashes.SHA512(), 66),
}
_BY_ALG = {v[0]: (k, v[1], v[2]) for k, v in _ALGS.items()}
ES384 = -35


def _uints(data: bytes) -> list[int]:
    return list(data)


def _from_uints(value: Any, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b <= 255 for b in value):
        return bytes(value)
    raise errors.BadSignatureSection(f"{what} is not a byte vector")


def encode_pcr_info(register_index: int, register_value: bytes) -> bytes:
    """CBOR of ``PcrInfo`` (the signed payload)."""
    return cbor2.dumps({"register_index": register_index, "register_value": _uints(register_value)})


def decode_pcr_info(data: bytes) -> tuple[int, bytes]:
    obj = _loads_exact(data, errors.BadSignatureSection, "PcrInfo")
    if not isinstance(obj, dict) or set(obj) != {"register_index", "register_value"}:
        raise errors.BadSignatureSection("PcrInfo fields")
    idx = obj["register_index"]
    if not isinstance(idx, int) or isinstance(idx, bool):
        raise errors.BadSignatureSection("register_index is not an integer")
    return idx, _from_uints(obj["register_value"], "register_value")


@dataclasses.dataclass(frozen=True)
class PcrSignature:
    signing_certificate: bytes  # PEM, as stored
    signature: bytes  # COSE_Sign1, untagged


def encode_signature_section(signatures: list[PcrSignature]) -> bytes:
    return cbor2.dumps(
        [
            {"signing_certificate": _uints(s.signing_certificate), "signature": _uints(s.signature)}
            for s in signatures
        ]
    )


def _loads_exact(data: bytes, error: type[errors.EifBuildError], what: str) -> Any:
    fp = io.BytesIO(data)
    try:
        obj = cbor2.CBORDecoder(fp).decode()
    except Exception as e:  # cbor2 raises several types for malformed input
        raise error(f"{what} is not valid CBOR: {e}") from None
    if fp.tell() != len(data):
        raise error(f"{what}: trailing bytes after the CBOR value", actual=len(data) - fp.tell())
    return obj


def decode_signature_section(data: bytes) -> list[PcrSignature]:
    obj = _loads_exact(data, errors.BadSignatureSection, "signature section")
    if not isinstance(obj, list) or not obj:
        raise errors.BadSignatureSection("signature section is not a non-empty array")
    out = []
    for item in obj:
        if not isinstance(item, dict) or set(item) != {"signing_certificate", "signature"}:
            raise errors.BadSignatureSection("PcrSignature fields")
        out.append(
            PcrSignature(
                _from_uints(item["signing_certificate"], "signing_certificate"),
                _from_uints(item["signature"], "signature"),
            )
        )
    return out


def load_certificate(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as e:
        raise errors.SigningError(f"signing certificate is not PEM X.509: {e}", code=ErrorCode.BAD_CERTIFICATE) from None


def certificate_der(pem: bytes) -> bytes:
    """DER of the PEM certificate: what PCR8 measures (§9.4)."""
    return load_certificate(pem).public_bytes(serialization.Encoding.DER)


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


def cose_sign1(payload: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """Untagged COSE_Sign1 over ``payload`` with an EC key (ES256/ES384/ES512 by curve)."""
    try:
        alg, hash_alg, size = _ALGS[key.curve.name]
    except KeyError:
        raise errors.SigningError(f"curve {key.curve.name}", code=ErrorCode.UNSUPPORTED_CURVE) from None
    protected = cbor2.dumps({1: alg})
    der = key.sign(_sig_structure(protected, payload), ec.ECDSA(hash_alg))
    r, s = decode_dss_signature(der)
    return cbor2.dumps([protected, {}, payload, r.to_bytes(size, "big") + s.to_bytes(size, "big")])


def cose_verify(cose: bytes, public_key: ec.EllipticCurvePublicKey) -> bytes:
    """Verify an (untagged or tag-18) COSE_Sign1; return its payload. Raises SigningError."""
    obj = _loads_exact(cose, errors.BadSignatureSection, "COSE_Sign1")
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag != 18:
            raise errors.BadSignatureSection("COSE tag", expected=18, actual=obj.tag)
        obj = obj.value
    if not (isinstance(obj, list) and len(obj) == 4 and isinstance(obj[0], bytes) and isinstance(obj[2], bytes) and isinstance(obj[3], bytes)):
        raise errors.BadSignatureSection("COSE_Sign1 structure")
    protected, _unprotected, payload, sig = obj
    prot = _loads_exact(protected, errors.BadSignatureSection, "COSE protected header") if protected else {}
    alg = prot.get(1) if isinstance(prot, dict) else None
    if alg not in _BY_ALG:
        raise errors.SigningError("COSE algorithm", code=ErrorCode.UNSUPPORTED_CURVE, actual=alg)
    curve, hash_alg, size = _BY_ALG[alg]
    if public_key.curve.name != curve:
        raise errors.SigningError("key curve does not match the COSE algorithm", code=ErrorCode.SIGNATURE_INVALID, expected=curve, actual=public_key.curve.name)
    if len(sig) != 2 * size:
        raise errors.SigningError("COSE signature length", code=ErrorCode.SIGNATURE_INVALID, expected=2 * size, actual=len(sig))
    der = encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big"))
    try:
        public_key.verify(der, _sig_structure(protected, payload), ec.ECDSA(hash_alg))
    except InvalidSignature:
        raise errors.SigningError("COSE_Sign1 signature does not verify", code=ErrorCode.SIGNATURE_INVALID) from None
    return payload


@dataclasses.dataclass(frozen=True)
class SigningKey:
    """A local signing identity: PEM certificate (stored in the EIF) and its EC private key."""

    certificate_pem: bytes
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def from_pem(cls, certificate_pem: bytes, private_key_pem: bytes, password: bytes | None = None) -> "SigningKey":
        cert = load_certificate(certificate_pem)
        try:
            key = serialization.load_pem_private_key(private_key_pem, password=password)
        except (ValueError, TypeError) as e:
            raise errors.SigningError(f"private key is not a PEM key: {e}", code=ErrorCode.BAD_KEY) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise errors.SigningError("private key is not an EC key", code=ErrorCode.BAD_KEY)
        if key.curve.name not in _ALGS:
            raise errors.SigningError(f"curve {key.curve.name}", code=ErrorCode.UNSUPPORTED_CURVE)
        pub = cert.public_key()
        if not isinstance(pub, ec.EllipticCurvePublicKey) or pub.public_numbers() != key.public_key().public_numbers():
            raise errors.SigningError("private key does not match the certificate", code=ErrorCode.KEY_CERT_MISMATCH)
        return cls(certificate_pem, key)

    def certificate_der(self) -> bytes:
        return certificate_der(self.certificate_pem)

    def sign_pcr0(self, pcr0: bytes) -> bytes:
        """The signature section for an EIF whose PCR0 is ``pcr0`` (48 raw bytes)."""
        payload = encode_pcr_info(0, pcr0)
        return encode_signature_section([PcrSignature(self.certificate_pem, cose_sign1(payload, self.private_key))])


def verify_signature_section(section: bytes, pcr0: bytes) -> bool:
    """True if the first signature verifies under its certificate and signs ``PcrInfo(0, pcr0)``."""
    sigs = decode_signature_section(section)
    cert = load_certificate(sigs[0].signing_certificate)
    pub = cert.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey):
        return False
    try:
        payload = cose_verify(sigs[0].signature, pub)
    except errors.SigningError:
        return False
    return payload == encode_pcr_info(0, pcr0)
