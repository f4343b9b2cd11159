"""The model-based service-account checks (harness/suites/service_account.py) pass the reference
and FAIL a reference with one client-observable account defect each.

Each variant wraps the reference's own operation handlers (served in-process: the harness's
client talks to the enclave through an httpx mock transport, so no port is needed) and breaks
one requirement of spec §6; the test runs exactly the check that must notice it.
"""

from __future__ import annotations

import json
import os
import unicodedata

import httpx
import pytest

from harness.protocol.client import VaultClient
from harness.suites import account_model
from harness.suites.registry import CheckFailed, CheckUnimplemented, Context, all_checks
from reference.enclave import operations as reference_operations
from reference.enclave.errors import OperationCode, OperationError
from reference.enclave.service import Enclave
from reference.enclave.store import SqliteStore

GET, ROTATE, CREATE = "serviceAccount:get", "serviceAccount:rotate", "serviceAccount:create"
NEW_CHECKS = [
    "service-account/reply-members", "service-account/state-after-create", "service-account/state-after-rotate",
    "service-account/timestamps", "service-account/timestamp-utc", "service-account/credential-matrix",
    "service-account/credential-codes", "service-account/refusal-indistinguishable", "service-account/no-leak",
    "service-account/metadata-roundtrip", "service-account/metadata-default", "service-account/metadata-invalid",
    "service-account/metadata-invalid-code",
]


def in_process_client(tmp_path, operations: dict) -> VaultClient:
    enclave = Enclave(kv=SqliteStore(tmp_path / "vault.sqlite"), master_key=os.urandom(32), operations=operations)

    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == "/api/v1/enclave":
            return httpx.Response(200, json={"publicKey": enclave.public_key.hex()})
        status, body = enclave.handle_envelope(request.content)
        return httpx.Response(status, content=body, headers={"content-type": "application/json"})

    client = VaultClient("http://vault.test")
    client._http.close()
    client._http = httpx.Client(base_url=client.base_url, transport=httpx.MockTransport(route))
    return client


def run_check(check_id: str, tmp_path, operations: dict) -> CheckFailed | None:
    check = next(c for c in all_checks() if c.id == check_id)
    client = in_process_client(tmp_path, operations)
    try:
        check.func(Context("http://vault.test", client, options={"examples": 5}))
    except CheckFailed as failure:
        return failure
    finally:
        client.close()
    return None


# ---- one defect per variant: a wrapper around the reference's handlers ---------------------------

def wrap(name, after=None, before=None):
    """Operations whose ``name`` handler is changed: ``before(ctx, request)`` may return a new
    request or raise; ``after(data, request)`` rewrites the result."""
    operations = reference_operations.default_operations()
    real = operations[name]

    def handler(ctx, request):
        request = before(ctx, request) or request if before else request
        data = real(ctx, request)
        return after(data, request) if after else data

    operations[name] = handler
    return operations


def _extra_digest_member(data, request):
    return {**data, "adminKeyDigest": "00" * 32}


def _updated_now(data, request):
    from datetime import datetime, timezone
    return {**data, "updatedAt": datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")}


def _rotate_clears_metadata(ctx, request):
    from reference.enclave.auth import account_address, account_by_rotation_code
    account = account_by_rotation_code(ctx, request.auth)
    account["metadata"] = {}
    ctx.store.put(account_address(ctx, account["id"]), account)


def _rotate_keeps_updated_at():
    """Rotation leaves updatedAt at its old value."""
    from reference.enclave.auth import _account_by_secret, account_address, account_by_rotation_code

    operations = reference_operations.default_operations()
    real = operations[ROTATE]

    def handler(ctx, request):
        before = account_by_rotation_code(ctx, request.auth)["updatedAt"]
        data = real(ctx, request)
        account = _account_by_secret(ctx, "admin-key", data["newAdminKey"])  # the account just rotated
        account["updatedAt"] = before
        ctx.store.put(account_address(ctx, account["id"]), account)
        return data

    operations[ROTATE] = handler
    return operations


def _offset_timestamps(data, request):
    return {**data, **{name: data[name].replace("Z", "+00:00") for name in ("createdAt", "updatedAt") if name in data}}


def _offset_everywhere():
    """Timestamps written as +00:00 instead of Z, consistently in create and get."""
    operations = wrap(CREATE, after=_offset_timestamps)
    real_get = operations[GET]
    operations[GET] = lambda ctx, request: _offset_timestamps(real_get(ctx, request), request)
    return operations


def _rotation_code_opens_get(ctx, request):
    from reference.enclave.auth import _account_by_secret
    value = (request.auth or {}).get("adminKey")
    account = _account_by_secret(ctx, "rotation-code", value)
    if account is not None:  # a lookup that tries every kind of secret
        raise _Answer({k: account[k] for k in ("id", "metadata", "createdAt", "updatedAt")})


class _Answer(Exception):
    def __init__(self, data):
        self.data = data


def _answering(operations, name):
    real = operations[name]

    def handler(ctx, request):
        try:
            return real(ctx, request)
        except _Answer as answer:
            return answer.data

    operations[name] = handler
    return operations


def _wrong_slot_code(ctx, request):
    if request.auth and "rotationCode" in request.auth:
        raise OperationError(OperationCode.AUTH_MISSING, "auth must hold adminKey")


def _type_message(ctx, request):
    if request.auth and "adminKey" in request.auth and not isinstance(request.auth["adminKey"], str):
        raise OperationError(OperationCode.AUTH_INVALID_ADMIN_KEY, "adminKey must be a string")


def _echo_secret(ctx, request):
    if request.auth and "accessToken" in request.auth:
        raise OperationError(OperationCode.AUTH_INVALID_ACCESS_TOKEN, f"{request.auth['accessToken']!r} is not valid")


def _nfc_metadata(ctx, request):
    metadata = request.options.get("metadata")
    if isinstance(metadata, dict):
        normalised = {unicodedata.normalize("NFC", k): unicodedata.normalize("NFC", v) if isinstance(v, str) else v
                      for k, v in metadata.items()}
        return request._replace(options={**request.options, "metadata": normalised})


def _default_metadata(ctx, request):
    if "metadata" not in request.options:
        return request._replace(options={**request.options, "metadata": {"source": "default"}})


def _coerce_metadata(ctx, request):
    metadata = request.options.get("metadata")
    if isinstance(metadata, dict):
        return request._replace(options={**request.options, "metadata": {k: json.dumps(v) if not isinstance(v, str)
                                                                         else v for k, v in metadata.items()}})


def _wrong_metadata_code(ctx, request):
    metadata = request.options.get("metadata", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise OperationError(OperationCode.SERIALIZATION_ERROR, "bad metadata")


VARIANTS = {
    "service-account/reply-members": lambda: wrap(GET, after=_extra_digest_member),
    "service-account/state-after-create": lambda: wrap(GET, after=_updated_now),
    "service-account/state-after-rotate": lambda: wrap(ROTATE, before=_rotate_clears_metadata),
    "service-account/timestamps": _rotate_keeps_updated_at,
    "service-account/timestamp-utc": lambda: _offset_everywhere(),
    "service-account/credential-matrix": lambda: _answering(wrap(GET, before=_rotation_code_opens_get), GET),
    "service-account/credential-codes": lambda: wrap(GET, before=_wrong_slot_code),
    "service-account/refusal-indistinguishable": lambda: wrap(GET, before=_type_message),
    "service-account/no-leak": lambda: wrap(GET, before=_echo_secret),
    "service-account/metadata-roundtrip": lambda: wrap(CREATE, before=_nfc_metadata),
    "service-account/metadata-default": lambda: wrap(CREATE, before=_default_metadata),
    "service-account/metadata-invalid": lambda: wrap(CREATE, before=_coerce_metadata),
    "service-account/metadata-invalid-code": lambda: wrap(CREATE, before=_wrong_metadata_code),
}


def _access_token_as_admin_key(ctx, request):
    if request.auth and "accessToken" in request.auth:  # "a bearer secret is a bearer secret"
        return request._replace(auth={"adminKey": request.auth["accessToken"]})


def _rotate_reads_any_slot(ctx, request):
    if request.auth and "rotationCode" not in request.auth and request.auth:
        return request._replace(auth={"rotationCode": next(iter(request.auth.values()))})


def _get_stale_metadata_of_newest():
    """get shows the metadata of the most recently created account (a shared cache)."""
    operations = reference_operations.default_operations()
    real_create, real_get, last = operations[CREATE], operations[GET], {}

    def create(ctx, request):
        last["metadata"] = request.options.get("metadata", {})
        return real_create(ctx, request)

    operations[CREATE] = create
    operations[GET] = lambda ctx, request: {**real_get(ctx, request), "metadata": last["metadata"]}
    return operations


EXTRA_VARIANTS = [
    ("service-account/credential-matrix", lambda: wrap(GET, before=_access_token_as_admin_key)),
    ("service-account/credential-matrix", lambda: wrap(ROTATE, before=_rotate_reads_any_slot)),
    ("service-account/state-after-create", _get_stale_metadata_of_newest),
    ("service-account/no-leak", _get_stale_metadata_of_newest),
]


@pytest.mark.parametrize("check_id, variant", EXTRA_VARIANTS, ids=lambda v: getattr(v, "__name__", v))
def test_check_fails_further_variants(check_id, variant, tmp_path):
    assert run_check(check_id, tmp_path, variant()) is not None, f"{check_id} passed a Vault with a defect"


def test_every_new_check_has_a_variant():
    assert sorted(VARIANTS) == sorted(NEW_CHECKS)
    registered = {c.id for c in all_checks()}
    assert set(NEW_CHECKS) <= registered


@pytest.mark.parametrize("check_id", NEW_CHECKS)
def test_check_passes_the_reference(check_id, tmp_path):
    failure = run_check(check_id, tmp_path, reference_operations.default_operations())
    assert failure is None, f"{check_id} failed the unmodified reference: {failure.message} " \
                            f"(expected {failure.expected!r}, actual {failure.actual!r})"


@pytest.mark.parametrize("check_id", NEW_CHECKS)
def test_check_fails_its_broken_variant(check_id, tmp_path):
    failure = run_check(check_id, tmp_path, VARIANTS[check_id]())
    assert failure is not None, f"{check_id} passed a Vault with its defect"


# ---- the model on its own ------------------------------------------------------------------------

@pytest.mark.parametrize("value, valid", [
    ("2026-11-28T00:00:00.000Z", True), ("2026-11-28T00:00:00Z", True), ("2026-11-28T01:00:00+01:00", True),
    ("2026-11-28T00:00:00.123456789Z", True), ("2026-11-28", False), ("2026-11-28 00:00:00Z", False),
    ("2026-13-28T00:00:00Z", False), ("1764288000000", False), (1764288000000, False), ("", False),
])
def test_parse_timestamp(value, valid):
    assert (account_model.parse_timestamp(value) is not None) is valid


def test_offsets_name_the_same_instant():
    assert account_model.parse_timestamp("2026-11-28T01:00:00+01:00") == \
        account_model.parse_timestamp("2026-11-28T00:00:00.000Z")


def test_model_refuses_a_reused_secret():
    model = account_model.AccountModel()
    first = {"id": "a", "adminKey": "k1", "rotationCode": "r1", "createdAt": "2026-11-28T00:00:00Z",
             "updatedAt": "2026-11-28T00:00:00Z"}
    model.created({}, first)
    with pytest.raises(account_model.ModelMismatch, match="issued again"):
        model.created({}, {**first, "id": "b", "rotationCode": "r2"})


@pytest.mark.parametrize("check_id", NEW_CHECKS)
def test_check_is_unimplemented_on_a_vault_without_accounts(check_id, tmp_path):
    # A Vault answering unknown_operation to everything must never pass an accounts check.
    check = next(c for c in all_checks() if c.id == check_id)
    client = in_process_client(tmp_path, {})
    try:
        with pytest.raises(CheckUnimplemented):
            check.func(Context("http://vault.test", client, options={"examples": 5}))
    finally:
        client.close()
