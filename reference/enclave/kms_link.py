"""KMS through the launcher (spec 9.11 item 8): the local microVM's stand-in for the vsock-proxy.

On Nitro the enclave has no network; its KMS calls leave through a proxy on the parent instance,
which sees only what KMS sees: the attestation document and, in the answer, the data key encrypted
to the enclave's RSA key (CiphertextForRecipient). Here the launcher plays that proxy on the
virtio-serial port ``org.nitro-vault.kms``, in the framing of 2.4, with CBOR bodies:

    "generate-data-key" {"recipient": {...}}                   -> {"keyArn", "ciphertextBlob", "ciphertextForRecipient"}
    "decrypt"           {"ciphertextBlob": b, "recipient": {...}} -> {"ciphertextForRecipient"}
    "get-key-policy"    {}                                        -> {"policy"}
    "describe-key"      {}                                        -> {"keyArn"}

The key is the launcher's (its configuration, as the key ARN is the parent's on AWS). Answers:
200, or 403 (KMS denied: the policy's attestation conditions were not met), 502 (KMS failed or
unreachable), 400 (the request was malformed). The guest never holds KMS credentials.
"""

from __future__ import annotations

import cbor2

from .kms import KmsBootError, KmsDenied, KmsFailed, KmsUnreachable

PORT_NAME = "org.nitro-vault.kms"


class LinkKmsClient:
    """:class:`~reference.enclave.kms.KmsClient` over the launcher's port."""

    def __init__(self, port: str = PORT_NAME):
        from .serial_link import SerialLink

        self._link = SerialLink(port)
        self.where = f"the launcher's KMS proxy ({self._link.path})"

    def _call(self, kind: str, request: dict) -> dict:
        from .serial_link import SerialLinkError

        try:
            status, body = self._link.exchange(kind, cbor2.dumps(request))
        except SerialLinkError as error:
            raise KmsUnreachable(f"KMS unreachable through the launcher: {error}") from None
        if status == 403:
            raise KmsDenied(body.decode(errors="replace"))
        if status != 200:
            raise KmsFailed(f"the launcher's KMS proxy answered {status}: {body.decode(errors='replace')}")
        answer = cbor2.loads(body)
        if not isinstance(answer, dict):
            raise KmsFailed("the launcher's KMS proxy answered something other than a map")
        return answer

    def key_arn(self) -> str:
        """The key the launcher releases from (its configuration, not the image's)."""
        return self._call("describe-key", {})["keyArn"]

    def generate_data_key(self, key_id: str | None, recipient: dict) -> tuple[str, bytes, bytes]:
        answer = self._call("generate-data-key", {"recipient": recipient})
        return answer["keyArn"], answer["ciphertextBlob"], answer["ciphertextForRecipient"]

    def decrypt(self, key_id: str | None, ciphertext_blob: bytes, recipient: dict) -> bytes:
        return self._call("decrypt", {"ciphertextBlob": ciphertext_blob, "recipient": recipient})["ciphertextForRecipient"]

    def get_key_policy(self, key_id: str | None) -> str:
        return self._call("get-key-policy", {})["policy"]


# --- the launcher's side ---------------------------------------------------------------------------


def _recipient(value) -> dict | None:
    if (isinstance(value, dict) and set(value) == {"KeyEncryptionAlgorithm", "AttestationDocument"}
            and isinstance(value["KeyEncryptionAlgorithm"], str) and isinstance(value["AttestationDocument"], bytes)):
        return value
    return None


def answer(client, key_id: str, kind: str, body: bytes) -> tuple[int, bytes]:
    """The proxy's answer to one request, calling KMS with the launcher's client and key. Blocking;
    never raises on what the guest sends."""
    from .serial_link import decode_request_map

    try:
        request = decode_request_map(body)
    except ValueError as error:
        return 400, str(error).encode()
    try:
        if kind == "generate-data-key" and set(request) == {"recipient"} and _recipient(request["recipient"]):
            arn, blob, for_recipient = client.generate_data_key(key_id, request["recipient"])
            reply = {"keyArn": arn, "ciphertextBlob": blob, "ciphertextForRecipient": for_recipient}
        elif (kind == "decrypt" and set(request) == {"ciphertextBlob", "recipient"}
              and isinstance(request["ciphertextBlob"], bytes) and _recipient(request["recipient"])):
            reply = {"ciphertextForRecipient": client.decrypt(key_id, request["ciphertextBlob"], request["recipient"])}
        elif kind == "get-key-policy" and request == {}:
            reply = {"policy": client.get_key_policy(key_id)}
        elif kind == "describe-key" and request == {}:
            reply = {"keyArn": key_id}
        else:
            return 400, f"not a request this proxy forwards: {kind!r} with {sorted(map(str, request))}".encode()
    except KmsDenied as error:
        return 403, str(error).encode()
    except KmsBootError as error:
        return 502, str(error).encode()
    return 200, cbor2.dumps(reply)
