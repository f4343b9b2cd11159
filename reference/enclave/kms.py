"""The master key from KMS, released only to the attested enclave (spec §11.1–§11.3). Sans-IO.

Boot, inside the enclave:

1. make an RSA-2048 key pair (:class:`RecipientKey`); it never leaves this process;
2. ask the NSM for an attestation document whose ``public_key`` is that key's DER
   SubjectPublicKeyInfo, and name it as the ``Recipient`` (RSAES_OAEP_SHA_256);
3. first boot: ``GenerateDataKey(KeySpec=AES_256)``; later boots: ``Decrypt(CiphertextBlob)``;
4. open ``CiphertextForRecipient`` (BER CMS EnvelopedData: RSA-OAEP-SHA256 key transport,
   AES-256-CBC content) with the RSA private key: the 32-byte data key, in memory only.

Only the ``CiphertextBlob`` and the key ARN are stored (:class:`DataKeyFile`); without KMS and
an attestation KMS accepts they open nothing. The KMS calls go through a :class:`KmsClient`
(``kms_client.py`` is the boto3 one), so this module does no IO except the small blob file.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from asn1crypto import cms
from cryptography.hazmat.primitives import hashes, padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import VaultError
from .keyring import MASTER_KEY_BYTES

RECIPIENT_ALGORITHM = "RSAES_OAEP_SHA_256"
RSA_BITS = 2048
DATA_KEY_FILE = "master-key.kms.json"


class KmsBootError(VaultError):
    """The master key could not be obtained; ``cause`` is one line for the operator."""

    def __init__(self, cause: str):
        super().__init__(cause)
        self.cause = cause


class KmsUnreachable(KmsBootError):
    """No answer from KMS (network, endpoint, timeout)."""


class KmsDenied(KmsBootError):
    """KMS answered AccessDeniedException (the key policy refused this enclave)."""


class KmsFailed(KmsBootError):
    """Any other KMS error (unknown key, disabled key, bad request, missing credentials)."""


class CmsOpenError(KmsBootError):
    """``CiphertextForRecipient`` does not have KMS's shape or does not open with our key."""


class KmsClient(Protocol):
    """The three KMS calls the enclave makes; errors are :class:`KmsBootError` subclasses."""

    def generate_data_key(self, key_id: str, recipient: dict) -> tuple[str, bytes, bytes]:
        """-> (key ARN, CiphertextBlob, CiphertextForRecipient)."""

    def decrypt(self, key_id: str, ciphertext_blob: bytes, recipient: dict) -> bytes:
        """-> CiphertextForRecipient."""

    def get_key_policy(self, key_id: str) -> str:
        """-> the ``Policy`` string exactly as KMS returned it."""


class RecipientKey:
    """The enclave's ephemeral RSA key for one KMS release; the private half stays here."""

    def __init__(self, private_key: rsa.RSAPrivateKey | None = None):
        self._private = private_key or rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)

    def spki_der(self) -> bytes:
        return self._private.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)

    def recipient(self, nsm) -> dict:
        """The ``Recipient`` parameter: an attestation document binding this key's SPKI."""
        return {"KeyEncryptionAlgorithm": RECIPIENT_ALGORITHM,
                "AttestationDocument": nsm.attest(public_key=self.spki_der())}

    def open(self, ciphertext_for_recipient: bytes) -> bytes:
        """Open KMS's CMS EnvelopedData; returns the plaintext (the data key)."""
        return open_enveloped_data(ciphertext_for_recipient, self._private)


def open_enveloped_data(ber: bytes, private_key: rsa.RSAPrivateKey) -> bytes:
    """RSA-OAEP(SHA-256, MGF1-SHA-256) key transport, then AES-256-CBC with PKCS#7 padding.

    Every shape check is explicit: an answer of another shape is refused rather than guessed at.
    """
    try:
        info = cms.ContentInfo.load(bytes(ber))
        if info["content_type"].native != "enveloped_data":
            raise CmsOpenError(f"CiphertextForRecipient is {info['content_type'].native}, not envelopedData")
        enveloped = info["content"]
        recipients = enveloped["recipient_infos"]
        if len(recipients) != 1 or recipients[0].name != "ktri":
            raise CmsOpenError("CiphertextForRecipient must have exactly one key-transport recipient")
        ktri = recipients[0].chosen
        algorithm = ktri["key_encryption_algorithm"]
        if algorithm["algorithm"].native != "rsaes_oaep":
            raise CmsOpenError(f"key encryption is {algorithm['algorithm'].native}, not RSAES-OAEP")
        params = algorithm["parameters"].native or {}
        mgf = params.get("mask_gen_algorithm") or {}
        if (params.get("hash_algorithm") or {}).get("algorithm") != "sha256" or \
                (mgf.get("parameters") or {}).get("algorithm") != "sha256":
            raise CmsOpenError("RSAES-OAEP must use SHA-256 and MGF1-SHA-256")
        content_info = enveloped["encrypted_content_info"]
        content_algorithm = content_info["content_encryption_algorithm"]
        if content_algorithm["algorithm"].native != "aes256_cbc":
            raise CmsOpenError(f"content encryption is {content_algorithm['algorithm'].native}, not AES-256-CBC")
        iv = content_algorithm["parameters"].native
        ciphertext = content_info["encrypted_content"].native
        encrypted_key = ktri["encrypted_key"].native
    except CmsOpenError:
        raise
    except (ValueError, TypeError, KeyError) as error:
        raise CmsOpenError(f"CiphertextForRecipient is not CMS EnvelopedData: {error}") from None
    if not isinstance(iv, bytes) or len(iv) != 16 or not ciphertext or len(ciphertext) % 16:
        raise CmsOpenError("CiphertextForRecipient has a malformed IV or content length")
    try:
        content_key = private_key.decrypt(encrypted_key, padding.OAEP(
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    except ValueError:
        raise CmsOpenError("CiphertextForRecipient was not encrypted to this enclave's key") from None
    if len(content_key) != 32:
        raise CmsOpenError("the CMS content key is not 32 bytes")
    decryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = sym_padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise CmsOpenError("the CMS content has bad padding") from None


@dataclass(frozen=True)
class StoredDataKey:
    """What the data directory keeps: useless without KMS and an accepted attestation."""

    key_arn: str
    ciphertext_blob: bytes


@dataclass
class DataKeyFile:
    """``<data-dir>/master-key.kms.json``: ``{"keyArn": ..., "ciphertextBlob": base64}``."""

    path: Path

    def load(self) -> StoredDataKey | None:
        try:
            document = json.loads(self.path.read_text())
            return StoredDataKey(document["keyArn"], base64.b64decode(document["ciphertextBlob"], validate=True))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            raise KmsBootError(f"{self.path} is not a stored KMS data key: {error}") from None

    def save(self, stored: StoredDataKey) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.path.with_name(self.path.name + ".tmp")
        scratch.write_text(json.dumps({"keyArn": stored.key_arn,
                                       "ciphertextBlob": base64.b64encode(stored.ciphertext_blob).decode()}))
        os.replace(scratch, self.path)  # a crash leaves the old file or the new one, never half


def release_master_key(client: KmsClient, nsm, stored: DataKeyFile, key_id: str | None) -> tuple[bytes, str]:
    """The boot flow: returns (data key, key ARN). ``key_id`` may be omitted on later boots."""
    recipient_key = RecipientKey()
    previous = stored.load()
    if previous is None:
        if not key_id:
            raise KmsFailed("no KMS key is configured and the data directory holds no data key")
        key_arn, blob, for_recipient = client.generate_data_key(key_id, recipient_key.recipient(nsm))
        data_key = recipient_key.open(for_recipient)
        _check_length(data_key)
        stored.save(StoredDataKey(key_arn, blob))  # only after the key opened: never store a useless blob
    else:
        key_arn = previous.key_arn
        for_recipient = client.decrypt(key_id or previous.key_arn, previous.ciphertext_blob,
                                       recipient_key.recipient(nsm))
        data_key = recipient_key.open(for_recipient)
        _check_length(data_key)
    return data_key, key_arn


def _check_length(data_key: bytes) -> None:
    if len(data_key) != MASTER_KEY_BYTES:
        raise CmsOpenError(f"KMS released {len(data_key)} bytes, not a {MASTER_KEY_BYTES}-byte data key")
