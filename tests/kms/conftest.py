"""Shared pieces for the mocked-KMS tests: a test Nitro PKI, signed attestation documents carrying
an RSA key, a fixed clock, and a running server on a loopback port."""

from __future__ import annotations

import datetime as dt
import hashlib
import os

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from harness.attestation import AttestationPayload, encode_payload
from harness.attestation.testpki import TestPki, sign_payload
from harness.kms.server import make_server
from harness.kms.service import KmsConfig, MockKms
from harness.kms.state import StateStore

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
GOOD_PCR0 = hashlib.sha384(b"the vault image").digest()
WRONG_PCR0 = hashlib.sha384(b"some other image").digest()
PCR1 = hashlib.sha384(b"kernel").digest()
ADMIN = "arn:aws:iam::111122223333:role/admin"
ENCLAVE = "arn:aws:iam::111122223333:role/vault-enclave"
OUTSIDER = "arn:aws:iam::444455556666:role/intruder"
PRINCIPALS = {"AKIAADMIN": ADMIN, "AKIAENCLAVE": ENCLAVE, "AKIAOUTSIDER": OUTSIDER}

LOCKED_POLICY = (
    '{"Version":"2012-10-17","Statement":[\n'
    ' {"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"%s"},\n'
    '  "Action":["kms:Create*","kms:Describe*","kms:Get*","kms:List*","kms:Put*"],"Resource":"*"},\n'
    ' {"Sid":"EnclaveOnly","Effect":"Allow","Principal":{"AWS":"%s"},\n'
    '  "Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"*",\n'
    '  "Condition":{"StringEqualsIgnoreCase":{"kms:RecipientAttestation:PCR0":"%s"}}}]}'
) % (ADMIN, ENCLAVE, GOOD_PCR0.hex().upper())  # upper case on purpose: IgnoreCase must matter


class Enclave:
    """An enclave stand-in: an RSA key pair and attestation documents that carry its SPKI."""

    def __init__(self, pki: TestPki, *, bits: int = 2048):
        self.pki = pki
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        self.spki = self.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)

    def document(self, pcr0: bytes = GOOD_PCR0, *, public_key: bytes | None | str = "mine", at: dt.datetime = NOW,
                 extra_pcrs: dict[int, bytes] | None = None) -> bytes:
        """A signed document; ``public_key="mine"`` carries this enclave's SPKI, ``None`` none."""
        payload = AttestationPayload(
            module_id="i-0123456789abcdef0-enc0123456789abcd", digest="SHA384",
            timestamp=int(at.timestamp() * 1000), pcrs={0: pcr0, 1: PCR1, **(extra_pcrs or {})},
            certificate=self.pki.leaf_der, cabundle=tuple(self.pki.cabundle),
            public_key=self.spki if public_key == "mine" else public_key, nonce=os.urandom(16))
        return sign_payload(encode_payload(payload), self.pki.leaf_key)

    def recipient(self, **kw) -> dict:
        return {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": self.document(**kw)}


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return TestPki.generate(NOW)


@pytest.fixture(scope="session")
def enclave(pki) -> Enclave:
    return Enclave(pki)


def make_kms(pki: TestPki, state_dir=None, **kw) -> MockKms:
    config = KmsConfig(**{"attestation_roots": [pki.root_pem], "clock": lambda: NOW, "principals": PRINCIPALS, **kw})
    store = StateStore(state_dir) if state_dir is not None else None
    return MockKms(config, state=store)


@pytest.fixture
def kms(pki) -> MockKms:
    return make_kms(pki)


@pytest.fixture
def server(kms):
    srv = make_server(kms)
    srv.start_in_thread()
    yield srv
    srv.shutdown()
    srv.server_close()


def boto_client(url: str, access_key: str = "AKIAENCLAVE"):
    import boto3

    return boto3.client("kms", endpoint_url=url, region_name="us-east-1", aws_access_key_id=access_key,
                        aws_secret_access_key="dummy-secret")
