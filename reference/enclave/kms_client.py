"""The enclave's KMS client: boto3, and nothing else (spec §11.1).

Real AWS KMS by configuration (region, endpoint, credentials as boto3 finds them), or any server
speaking the KMS JSON protocol (the embedded mock) through ``endpoint_url``. Every botocore
failure becomes one :class:`~reference.enclave.kms.KmsBootError` subclass with a one-line cause.
"""

from __future__ import annotations

from dataclasses import dataclass

from .kms import KmsDenied, KmsFailed, KmsUnreachable


@dataclass
class Boto3KmsClient:
    region: str | None = None
    endpoint_url: str | None = None
    access_key_id: str | None = None  # only for the embedded mock; real KMS uses boto3's chain
    secret_access_key: str | None = None
    timeout_seconds: float = 10.0

    def __post_init__(self):
        import boto3
        from botocore.config import Config as BotoConfig

        session = boto3.session.Session()
        region = self.region or session.region_name
        if region is None:
            raise KmsFailed("no AWS region for KMS: pass --kms-region or set AWS_REGION")
        self._client = session.client(
            "kms", region_name=region, endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
            config=BotoConfig(connect_timeout=self.timeout_seconds, read_timeout=self.timeout_seconds,
                              retries={"max_attempts": 2, "mode": "standard"}))
        self.where = self.endpoint_url or f"AWS KMS in {region}"

    def _call(self, operation: str, **params) -> dict:
        from botocore.exceptions import (BotoCoreError, ClientError, ConnectTimeoutError,
                                         EndpointConnectionError, NoCredentialsError, ReadTimeoutError)

        try:
            return getattr(self._client, operation)(**params)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "UnknownError")
            message = error.response.get("Error", {}).get("Message", "")
            cls = KmsDenied if code == "AccessDeniedException" else KmsFailed
            raise cls(f"KMS refused {_wire(operation)} ({code}): {message}") from None
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError) as error:
            raise KmsUnreachable(f"KMS unreachable at {self.where}: {error}") from None
        except NoCredentialsError:
            raise KmsFailed("no AWS credentials for KMS (boto3 found none)") from None
        except BotoCoreError as error:
            raise KmsFailed(f"KMS {_wire(operation)} failed: {error}") from None

    def generate_data_key(self, key_id: str, recipient: dict) -> tuple[str, bytes, bytes]:
        answer = self._call("generate_data_key", KeyId=key_id, KeySpec="AES_256", Recipient=recipient)
        _no_plaintext(answer)
        return answer["KeyId"], answer["CiphertextBlob"], _for_recipient(answer)

    def decrypt(self, key_id: str, ciphertext_blob: bytes, recipient: dict) -> bytes:
        answer = self._call("decrypt", KeyId=key_id, CiphertextBlob=ciphertext_blob, Recipient=recipient)
        _no_plaintext(answer)
        return _for_recipient(answer)

    def get_key_policy(self, key_id: str) -> str:
        return self._call("get_key_policy", KeyId=key_id, PolicyName="default")["Policy"]

    # Used by the embedded default only (creating the development key).
    def create_key(self, policy: str, description: str) -> str:
        return self._call("create_key", Policy=policy, Description=description,
                          KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["Arn"]

    def describe_key(self, key_id: str) -> str:
        return self._call("describe_key", KeyId=key_id)["KeyMetadata"]["Arn"]


def _wire(operation: str) -> str:
    return "".join(part.title() for part in operation.split("_"))


def _for_recipient(answer: dict) -> bytes:
    value = answer.get("CiphertextForRecipient")
    if not value:
        raise KmsFailed("KMS answered without CiphertextForRecipient (does it support Recipient?)")
    return value


def _no_plaintext(answer: dict) -> None:
    # A KMS that ignores Recipient (plain moto, a misconfigured proxy) hands the key to the host.
    if answer.get("Plaintext"):
        raise KmsFailed("KMS returned the data key in Plaintext: it ignored the Recipient; refusing it")
