"""The mocked KMS core: AWS JSON 1.1 requests in, responses out, no sockets (KMS.md section 3).

``MockKms.handle(target, body, headers)`` takes one request as the wire carries it
(``X-Amz-Target: TrentService.<Operation>``, a JSON body with base64 blobs) and returns
``(status, headers, body)``; ``MockKms.call(operation, params, access_key_id=...)`` is the same
with a dict in and a dict out (raising :class:`KmsError`). The HTTP server (``server.py``) and
in-process tests both drive this one object.

Per request, in order: caller identity from the access key id; the key from ``KeyId`` (or from the
ciphertext for ``Decrypt``); ``Recipient`` checks (algorithm, attestation verified against the
configured root at the injected clock's time, RSA SPKI >= 2048 bits); the request context (the
``kms:RecipientAttestation:*`` keys, encryption context, caller); the key policy evaluated by
``policy.evaluate``; then the operation. ``GenerateDataKey``, ``Decrypt`` and ``GenerateRandom``
with a Recipient answer ``CiphertextForRecipient`` and never ``Plaintext``. Every call, allowed,
denied or failed, appends one record to the audit log.

Authorization covers key-scoped operations only: those naming a key by ``KeyId``, alias operations
(by their target key), and ``Decrypt``/``ReEncrypt`` by the key their ciphertext names
(``ReEncrypt`` needs ``kms:ReEncryptFrom`` on it and ``kms:ReEncryptTo`` on the destination).
Grants are stored by moto but never authorize anything (stricter than AWS). Operations with no key
(``CreateKey``, ``ListKeys``, ``ListAliases``, ``GenerateRandom``) are governed by IAM in AWS;
the mock has no IAM and allows them. Request signatures are not verified: the access key id only
selects the caller's principal.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from moto.core.exceptions import JsonRESTError
from moto.kms.models import KmsBackend
from moto.kms.responses import KmsResponse
from moto.kms.utils import HEADER_LEN, _deserialize_ciphertext_blob

from ..attestation import AttestationError, Expectations, unsafe_decode_document, verify
from . import cms
from .policy import PolicyError, Request, evaluate, parse_policy
from .state import StateStore

__all__ = ["AuditRecord", "KmsConfig", "KmsError", "MockKms", "DEFAULT_ACCOUNT", "DEFAULT_PRINCIPAL",
           "DEFAULT_REGION", "RECIPIENT_ALGORITHM"]

DEFAULT_ACCOUNT = "111122223333"
DEFAULT_REGION = "us-east-1"
DEFAULT_PRINCIPAL = f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/vault-enclave"
RECIPIENT_ALGORITHM = "RSAES_OAEP_SHA_256"
MIN_RSA_BITS = 2048
_RECIPIENT_OPS = ("Decrypt", "GenerateDataKey", "GenerateRandom")
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


class KmsError(Exception):
    """An AWS-shaped error: ``code`` is the ``__type`` boto3 reports, ``status`` the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


@dataclass(frozen=True, kw_only=True)
class KmsConfig:
    """Everything the mock needs from outside, injected (no global clock, no global state).

    ``attestation_roots``: trust roots for Recipient documents (PEM/DER bytes or certificates);
    ``None`` means the AWS Nitro root G1. ``clock`` gives the verification time.
    ``principals``: access key id -> caller ARN; any other key id is ``default_principal``
    (``None`` refuses unknown key ids with ``UnrecognizedClientException``).
    ``max_document_age``: how old an attestation document may be (AWS KMS: 5 minutes).
    """

    account: str = DEFAULT_ACCOUNT
    region: str = DEFAULT_REGION
    attestation_roots: Sequence[bytes | x509.Certificate] | None = None
    clock: Callable[[], _dt.datetime] = lambda: _dt.datetime.now(_dt.timezone.utc)
    principals: Mapping[str, str] = field(default_factory=dict)
    default_principal: str | None = DEFAULT_PRINCIPAL
    random: Callable[[int], bytes] = os.urandom
    max_document_age: _dt.timedelta | None = _dt.timedelta(minutes=5)


@dataclass
class AuditRecord:
    """One line of the audit log (see README.md for the JSON form)."""

    time: str
    operation: str
    principal: str | None
    access_key_id: str | None
    key_arn: str | None = None
    recipient: bool = False
    attestation_verified: bool | None = None
    attestation_error: str | None = None
    image_sha384: str | None = None
    pcrs: dict[str, str] | None = None
    decision: str = "error"  # "allow" | "deny" | "error"
    statement: str | int | None = None
    near_misses: list[list] | None = None
    reason: str = ""
    error_code: str | None = None

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


class _MotoResponder(KmsResponse):
    """moto's own KMS request handlers, bound to our backend instead of moto's global registry."""

    def __init__(self, backend: KmsBackend):
        super().__init__()
        self._backend = backend

    @property
    def kms_backend(self) -> KmsBackend:  # type: ignore[override]
        return self._backend

    def run(self, operation: str, params: dict, region: str, account: str) -> Any:
        self.body = json.dumps(params)
        self.region, self.current_account = region, account
        method = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
        handler = getattr(self, method, None)
        if handler is None or operation in ("Dispatch", "SetupClass"):
            raise KmsError("UnknownOperationException", f"operation {operation} is not supported by the mock")
        out = handler()
        return json.loads(out) if out else {}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise KmsError("ValidationException", f"{name} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KmsError("SerializationException", f"{name} is not valid base64") from None


@dataclass(frozen=True)
class _Recipient:
    spki: bytes
    pcrs: dict[int, bytes]


class MockKms:
    """One mocked KMS region of one account. Thread-safe (one lock around each call)."""

    def __init__(self, config: KmsConfig | None = None, *, state: StateStore | None = None,
                 audit_sink: Callable[[AuditRecord], None] | None = None):
        self.config = config or KmsConfig()
        self.backend = KmsBackend(self.config.region, self.config.account)
        self._moto = _MotoResponder(self.backend)
        self._state = state
        self._audit_sink = audit_sink
        self.audit: list[AuditRecord] = []
        self._lock = threading.Lock()
        if state is not None:
            state.restore(self.backend)

    # --- wire level ------------------------------------------------------------------------------

    def handle(self, target: str | None, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict, bytes]:
        """One AWS JSON 1.1 request -> (status, headers, body); never raises."""
        try:
            if not target or not target.startswith("TrentService."):
                raise KmsError("UnknownOperationException", "missing or unknown X-Amz-Target")
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                raise KmsError("SerializationException", "request body is not JSON") from None
            if not isinstance(params, dict):
                raise KmsError("SerializationException", "request body must be a JSON object")
            auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
            m = _CREDENTIAL.search(auth)
            result = self.call(target.split(".", 1)[1], params, access_key_id=m.group(1) if m else None)
            return 200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(result).encode()
        except KmsError as err:
            body_out = json.dumps({"__type": err.code, "message": err.message}).encode()
            return err.status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": err.code}, body_out

    # --- call level ------------------------------------------------------------------------------

    def call(self, operation: str, params: Mapping[str, Any], *, access_key_id: str | None = None) -> dict:
        """Run one operation (wire-form params: blobs base64); raise :class:`KmsError`."""
        with self._lock:
            record = AuditRecord(time=self.config.clock().isoformat(), operation=operation, principal=None,
                                 access_key_id=access_key_id)
            try:
                result = self._call(operation, dict(params), record)
                if record.decision == "error":
                    record.decision = "allow"
                return result
            except KmsError as err:
                record.error_code = err.code
                if not record.reason:
                    record.reason = err.message
                raise
            finally:
                self.audit.append(record)
                if self._audit_sink is not None:
                    self._audit_sink(record)

    def _principal(self, access_key_id: str | None) -> str:
        if access_key_id in self.config.principals:
            return self.config.principals[access_key_id]
        if self.config.default_principal is None:
            raise KmsError("UnrecognizedClientException", "The security token included in the request is invalid.")
        return self.config.default_principal

    def _key_arn(self, key_ref: Any) -> str:
        if not isinstance(key_ref, str) or not key_ref:
            raise KmsError("ValidationException", "KeyId must be a non-empty string")
        try:
            key_id = self.backend.any_id_to_key_id(key_ref)
        except Exception:  # noqa: BLE001 - moto raises several kinds for unknown ids
            key_id = None
        if not key_id or key_id not in self.backend.keys:
            raise KmsError("NotFoundException", f"Key '{self._display(key_ref)}' does not exist")
        return self.backend.keys[key_id].arn

    def _display(self, key_ref: str) -> str:
        if key_ref.startswith("arn:"):
            return key_ref
        kind = "" if key_ref.startswith("alias/") else "key/"
        return f"arn:aws:kms:{self.config.region}:{self.config.account}:{kind}{key_ref}"

    def _checks(self, operation: str, params: dict) -> list[tuple[str, str]]:
        """The (action, key ARN) pairs a request needs allowed, each by that key's policy."""
        if operation in ("Decrypt", "ReEncrypt"):
            # The source key is the one the ciphertext names; a KeyId/SourceKeyId, if given, must
            # be that key (otherwise one key's policy would authorize decrypting under another).
            blob_key = self._ciphertext_key(params)
            named = params.get("KeyId" if operation == "Decrypt" else "SourceKeyId")
            if named is not None and self._key_arn(named) != blob_key:
                raise KmsError("IncorrectKeyException",
                               "The key ID in the request does not identify a CMK that can perform this operation.")
            if operation == "Decrypt":
                return [("kms:Decrypt", blob_key)]
            return [("kms:ReEncryptFrom", blob_key),
                    ("kms:ReEncryptTo", self._key_arn(params.get("DestinationKeyId")))]
        if operation in ("CreateAlias", "UpdateAlias"):
            return [(f"kms:{operation}", self._key_arn(params.get("TargetKeyId")))]
        if operation == "DeleteAlias" and isinstance(params.get("AliasName"), str):
            return [("kms:DeleteAlias", self._key_arn(params["AliasName"]))]
        if "KeyId" in params:
            return [(f"kms:{operation}", self._key_arn(params["KeyId"]))]
        return []

    def _ciphertext_key(self, params: dict) -> str:
        blob = _unb64(params.get("CiphertextBlob"), "CiphertextBlob")
        if len(blob) <= HEADER_LEN:
            raise KmsError("InvalidCiphertextException", "")
        try:
            key_id = _deserialize_ciphertext_blob(blob).key_id
        except Exception:  # noqa: BLE001 - any failure means the blob is not ours
            raise KmsError("InvalidCiphertextException", "") from None
        if key_id not in self.backend.keys:
            raise KmsError("InvalidCiphertextException", "")
        return self.backend.keys[key_id].arn

    def _recipient(self, value: Any, record: AuditRecord) -> _Recipient:
        record.recipient = True
        if not isinstance(value, dict):
            raise KmsError("ValidationException", "Recipient must be an object")
        alg = value.get("KeyEncryptionAlgorithm")
        if alg != RECIPIENT_ALGORITHM:
            raise KmsError("ValidationException",
                           f"1 validation error detected: Value '{alg}' at 'recipient.keyEncryptionAlgorithm' failed "
                           f"to satisfy constraint: Member must satisfy enum value set: [{RECIPIENT_ALGORITHM}]")
        doc = _unb64(value.get("AttestationDocument"), "Recipient.AttestationDocument")
        try:  # for the audit log only: what the caller presented, before any trust
            presented = unsafe_decode_document(doc).payload.pcrs
            record.pcrs = {str(i): v.hex() for i, v in sorted(presented.items())}
            record.image_sha384 = presented[0].hex() if 0 in presented else None
        except AttestationError:
            pass
        try:
            verified = verify(doc, roots=self.config.attestation_roots, at=self.config.clock(),
                              expect=Expectations(allow_debug=True, max_age=self.config.max_document_age))
        except AttestationError as err:
            record.attestation_verified = False
            record.attestation_error = str(err)  # "[code] message"
            raise KmsError("ValidationException", f"The attestation document is not valid: {err}") from None
        record.attestation_verified = True
        spki = verified.public_key
        if not spki:
            raise KmsError("ValidationException", "The attestation document has no public_key")
        try:
            key = load_der_public_key(spki)
        except ValueError:
            key = None
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
            raise KmsError("ValidationException",
                           f"The attestation document's public_key must be a DER RSA SubjectPublicKeyInfo of at "
                           f"least {MIN_RSA_BITS} bits")
        return _Recipient(spki, dict(verified.pcrs))

    def _context(self, principal: str, params: dict, recipient: _Recipient | None) -> dict[str, Any]:
        ctx: dict[str, Any] = {
            "aws:PrincipalArn": principal,
            "aws:PrincipalAccount": principal.split(":")[4] if principal.count(":") >= 5 else "",
            "kms:CallerAccount": principal.split(":")[4] if principal.count(":") >= 5 else "",
        }
        enc = params.get("EncryptionContext")
        if isinstance(enc, dict):
            ctx["kms:EncryptionContextKeys"] = list(enc)
            for k, v in enc.items():
                ctx[f"kms:EncryptionContext:{k}"] = str(v)
        if recipient is not None:
            for i, v in recipient.pcrs.items():
                ctx[f"kms:RecipientAttestation:PCR{i}"] = v.hex()
            if 0 in recipient.pcrs:
                ctx["kms:RecipientAttestation:ImageSha384"] = recipient.pcrs[0].hex()
        return ctx

    def _call(self, operation: str, params: dict, record: AuditRecord) -> dict:
        principal = self._principal(record.access_key_id)
        record.principal = principal
        checks = self._checks(operation, params)
        key_arn = checks[0][1] if checks else None
        record.key_arn = key_arn
        recipient = None
        if "Recipient" in params:
            if operation not in _RECIPIENT_OPS:
                raise KmsError("ValidationException", f"{operation} does not take a Recipient")
            recipient = self._recipient(params.pop("Recipient"), record)
        for action, arn in checks:
            self._authorize(principal, action, arn, self._context(principal, params, recipient), record)
        if not checks:
            record.reason = "operation names no key; the mock has no IAM and allows it"
        handler = getattr(self, f"_op_{operation}", None)
        if handler is not None:
            return handler(params, key_arn, recipient)
        return self._moto_call(operation, params)

    def _authorize(self, principal: str, action: str, key_arn: str, context: dict, record: AuditRecord) -> None:
        key = self.backend.keys[key_arn.rsplit("/", 1)[1]]
        decision = evaluate(parse_policy(key.policy), Request(principal, action, key_arn, context))
        record.statement, record.reason = decision.statement, decision.reason
        if not decision.allowed:
            record.decision = "deny"
            record.near_misses = [list(m) for m in decision.near_misses] or None
            why = ("with an explicit deny in a resource-based policy" if decision.explicit_deny
                   else f"because no resource-based policy allows the {action} action")
            raise KmsError("AccessDeniedException",
                           f"User: {principal} is not authorized to perform: {action} on resource: {key_arn} {why}")
        record.decision = "allow"

    def _moto_call(self, operation: str, params: dict) -> dict:
        try:
            result = self._moto.run(operation, params, self.config.region, self.config.account)
        except JsonRESTError as err:
            raise KmsError(err.error_type, err.message, 400) from None
        if self._state is not None:
            self._state.save(self.backend)
        return result

    # --- operations the mock answers itself -------------------------------------------------------

    def _check_usable(self, key_arn: str) -> None:
        key = self.backend.keys[key_arn.rsplit("/", 1)[1]]
        if key.key_state == "Disabled":
            raise KmsError("DisabledException", f"{key_arn} is disabled.")
        if key.key_state != "Enabled":
            raise KmsError("KMSInvalidStateException", f"{key_arn} is pending deletion.")

    def _op_CreateKey(self, params: dict, key_arn: None, recipient: None) -> dict:
        if params.get("Policy") is not None:
            self._validate_policy(params["Policy"])
        return self._moto_call("CreateKey", params)

    @staticmethod
    def _validate_policy(text: Any) -> None:
        if not isinstance(text, str):
            raise KmsError("ValidationException", "Policy must be a string")
        try:
            parse_policy(text)
        except PolicyError as err:
            raise KmsError("MalformedPolicyDocumentException", str(err)) from None

    @staticmethod
    def _check_policy_name(params: dict) -> None:
        # AWS: PolicyName is optional and defaults to "default", the only name there is.
        name = params.get("PolicyName", "default")
        if name != "default":
            raise KmsError("NotFoundException", f"Policy '{name}' does not exist; the only key policy is 'default'")

    def _op_PutKeyPolicy(self, params: dict, key_arn: str, recipient: None) -> dict:
        self._check_policy_name(params)
        self._validate_policy(params.get("Policy"))
        self.backend.put_key_policy(key_arn, params["Policy"])  # stored byte-exact, never re-serialised
        if self._state is not None:
            self._state.save(self.backend)
        return {}

    def _op_GetKeyPolicy(self, params: dict, key_arn: str, recipient: None) -> dict:
        self._check_policy_name(params)
        return {"Policy": self.backend.get_key_policy(key_arn), "PolicyName": "default"}

    def _for_recipient(self, plaintext: bytes, recipient: _Recipient) -> str:
        return _b64(cms.build_enveloped_data(plaintext, recipient.spki, random=self.config.random))

    def _op_GenerateDataKey(self, params: dict, key_arn: str, recipient: _Recipient | None) -> dict:
        self._check_usable(key_arn)
        spec, nbytes = params.get("KeySpec"), params.get("NumberOfBytes")
        if (spec is None) == (nbytes is None):
            raise KmsError("ValidationException", "Please specify either number of bytes or key spec.")
        if spec is not None and spec not in ("AES_128", "AES_256"):
            raise KmsError("ValidationException",
                           f"1 validation error detected: Value '{spec}' at 'keySpec' failed to satisfy constraint: "
                           "Member must satisfy enum value set: [AES_256, AES_128]")
        if nbytes is not None and (not isinstance(nbytes, int) or isinstance(nbytes, bool) or not 1 <= nbytes <= 1024):
            raise KmsError("ValidationException", "NumberOfBytes must be an integer from 1 to 1024")
        enc = params.get("EncryptionContext") or {}
        plaintext, blob, arn = self.backend.generate_data_key(key_arn, enc, nbytes or 0, spec or "")
        out = {"CiphertextBlob": _b64(blob), "KeyId": arn}
        if recipient is not None:
            out["CiphertextForRecipient"] = self._for_recipient(plaintext, recipient)
        else:
            out["Plaintext"] = _b64(plaintext)
        return out

    def _op_Decrypt(self, params: dict, key_arn: str, recipient: _Recipient | None) -> dict:
        self._check_usable(key_arn)
        alg = params.get("EncryptionAlgorithm", "SYMMETRIC_DEFAULT")
        if alg != "SYMMETRIC_DEFAULT":
            raise KmsError("InvalidKeyUsageException", f"{alg} is not supported by this symmetric key")
        blob = _unb64(params.get("CiphertextBlob"), "CiphertextBlob")
        try:
            plaintext, arn = self.backend.decrypt(blob, params.get("EncryptionContext") or {})
        except JsonRESTError as err:
            raise KmsError(err.error_type, err.message) from None
        out = {"KeyId": arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}
        if recipient is not None:
            out["CiphertextForRecipient"] = self._for_recipient(plaintext, recipient)
        else:
            out["Plaintext"] = _b64(plaintext)
        return out

    def _op_GenerateRandom(self, params: dict, key_arn: None, recipient: _Recipient | None) -> dict:
        n = params.get("NumberOfBytes")
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 1024:
            raise KmsError("ValidationException", "NumberOfBytes must be an integer from 1 to 1024")
        data = self.config.random(n)
        if recipient is not None:
            return {"CiphertextForRecipient": self._for_recipient(data, recipient)}
        return {"Plaintext": _b64(data)}
