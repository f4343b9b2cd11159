"""``CiphertextForRecipient``: BER CMS EnvelopedData as AWS KMS writes it (KMS.md section 1).

Shape, copied from real KMS answers (fixtures ``kms-recipient-*.ber``)::

    ContentInfo (indefinite) { id-envelopedData, [0] (indefinite) EnvelopedData (indefinite) {
      version 2,
      SET { KeyTransRecipientInfo { version 2, [0] subjectKeyIdentifier (32 bytes),
            RSAES-OAEP { [0] sha256 (NULL params), [1] MGF1 { sha256 (NULL params) } },
            encryptedKey (256 bytes for RSA-2048) } },
      EncryptedContentInfo (indefinite) { id-data, aes256-CBC { IV (16 bytes) },
            [0] constructed (indefinite) { OCTET STRING chunk } } } }

The definite-length inner parts are built with asn1crypto; the four indefinite-length wrappers
are written by hand (asn1crypto always re-encodes with definite lengths). The subject key
identifier is the SHA-256 of the recipient's DER SubjectPublicKeyInfo: AWS does not publish its
derivation, and openers (ours, the SDK's) identify the recipient by holding the private key.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Callable

from asn1crypto import algos, cms, core
from cryptography.hazmat.primitives import hashes, padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import load_der_public_key

__all__ = ["CmsError", "EnvelopedFields", "build_enveloped_data", "open_enveloped_data", "parse_enveloped_data"]

_INDEF_SEQ = b"\x30\x80"
_INDEF_CTX0 = b"\xa0\x80"
_EOC = b"\x00\x00"
#: Chunk size of the encrypted content's OCTET STRINGs (AWS's 48-byte answer is one chunk).
CHUNK = 1024


class CmsError(ValueError):
    """The CMS structure does not parse or has a shape other than KMS's."""


@dataclass(frozen=True)
class EnvelopedFields:
    """The fields a parser extracts (the fixtures' manifest names)."""

    envelopedData_version: str
    recipient_version: str
    rid_subject_key_identifier: str
    key_encryption_algorithm: str
    oaep_hash: str
    oaep_mgf_hash: str
    encrypted_key_hex: str
    content_encryption_algorithm: str
    iv_hex: str
    encrypted_content_hex: str


def _oaep_sha256() -> cms.KeyEncryptionAlgorithm:
    sha256 = {"algorithm": "sha256", "parameters": core.Null()}
    return cms.KeyEncryptionAlgorithm({
        "algorithm": "rsaes_oaep",
        "parameters": algos.RSAESOAEPParams({
            "hash_algorithm": sha256,
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": sha256},
        }),
    })


def build_enveloped_data(plaintext: bytes, recipient_spki_der: bytes, *,
                         random: Callable[[int], bytes] = os.urandom) -> bytes:
    """Encrypt ``plaintext`` to the RSA key in ``recipient_spki_der`` the way KMS does."""
    public_key = load_der_public_key(recipient_spki_der)
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise CmsError("recipient key is not RSA")
    cek, iv = random(32), random(16)
    padder = sym_padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.AES(cek), modes.CBC(iv)).encryptor()
    content = enc.update(padded) + enc.finalize()
    encrypted_key = public_key.encrypt(cek, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                         algorithm=hashes.SHA256(), label=None))
    ktri = cms.KeyTransRecipientInfo({
        "version": "v2",
        "rid": cms.RecipientIdentifier({"subject_key_identifier": hashlib.sha256(recipient_spki_der).digest()}),
        "key_encryption_algorithm": _oaep_sha256(),
        "encrypted_key": encrypted_key,
    })
    recipient_infos = cms.RecipientInfos([cms.RecipientInfo({"ktri": ktri})]).dump()
    content_alg = cms.EncryptionAlgorithm({"algorithm": "aes256_cbc", "parameters": core.OctetString(iv)}).dump()
    chunks = b"".join(core.OctetString(content[i:i + CHUNK]).dump() for i in range(0, len(content), CHUNK))
    encrypted_content_info = (_INDEF_SEQ + cms.ContentType("data").dump() + content_alg
                              + _INDEF_CTX0 + chunks + _EOC + _EOC)
    enveloped = _INDEF_SEQ + cms.CMSVersion("v2").dump() + recipient_infos + encrypted_content_info + _EOC
    return _INDEF_SEQ + cms.ContentType("enveloped_data").dump() + _INDEF_CTX0 + enveloped + _EOC + _EOC


def _load(ber: bytes) -> cms.EnvelopedData:
    try:
        info = cms.ContentInfo.load(ber, strict=True)
        if info["content_type"].native != "enveloped_data":
            raise CmsError(f"content type is {info['content_type'].native}, not enveloped_data")
        env = info["content"]
        env.native  # force a full parse so malformed inner parts fail here
        return env
    except CmsError:
        raise
    except Exception as exc:  # noqa: BLE001 - asn1crypto raises ValueError, TypeError, KeyError...
        raise CmsError(f"CMS does not parse: {exc}") from None


def parse_enveloped_data(ber: bytes) -> EnvelopedFields:
    """The manifest fields of a KMS ``CiphertextForRecipient``; :class:`CmsError` if not KMS's shape."""
    env = _load(ber)
    infos = env["recipient_infos"]
    if len(infos) != 1 or infos[0].name != "ktri":
        raise CmsError("expected exactly one KeyTransRecipientInfo")
    ktri = infos[0].chosen
    if ktri["rid"].name != "subject_key_identifier":
        raise CmsError("recipient is not identified by subjectKeyIdentifier")
    kea = ktri["key_encryption_algorithm"]
    if kea["algorithm"].native != "rsaes_oaep":
        raise CmsError(f"key encryption is {kea['algorithm'].native}, not rsaes_oaep")
    params = kea["parameters"]
    eci = env["encrypted_content_info"]
    alg = eci["content_encryption_algorithm"]
    return EnvelopedFields(
        envelopedData_version=env["version"].native,
        recipient_version=ktri["version"].native,
        rid_subject_key_identifier=ktri["rid"].chosen.native.hex(),
        key_encryption_algorithm=kea["algorithm"].native,
        oaep_hash=params["hash_algorithm"]["algorithm"].native,
        oaep_mgf_hash=params["mask_gen_algorithm"]["parameters"]["algorithm"].native,
        encrypted_key_hex=ktri["encrypted_key"].native.hex(),
        content_encryption_algorithm=alg["algorithm"].native,
        iv_hex=alg["parameters"].native.hex(),
        encrypted_content_hex=eci["encrypted_content"].native.hex(),
    )


def open_enveloped_data(ber: bytes, private_key: rsa.RSAPrivateKey) -> bytes:
    """Decrypt a KMS ``CiphertextForRecipient`` with the recipient's RSA private key."""
    f = parse_enveloped_data(ber)
    if f.oaep_hash != "sha256" or f.oaep_mgf_hash != "sha256" or f.content_encryption_algorithm != "aes256_cbc":
        raise CmsError("unsupported algorithms (want RSAES-OAEP-SHA-256 and AES-256-CBC)")
    try:
        cek = private_key.decrypt(bytes.fromhex(f.encrypted_key_hex),
                                  padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                                               label=None))
        dec = Cipher(algorithms.AES(cek), modes.CBC(bytes.fromhex(f.iv_hex))).decryptor()
        padded = dec.update(bytes.fromhex(f.encrypted_content_hex)) + dec.finalize()
        unpadder = sym_padding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError as exc:
        raise CmsError(f"CMS does not open with this key: {exc}") from None
