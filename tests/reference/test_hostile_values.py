"""Hostile values inside the envelope: every one gets its documented error, never internal_server_error.

Lone surrogates (JSON's "\\ud800", which has no UTF-8 form), oversized metadata, and a generated
sweep of every operation with arbitrary options and credentials. Records are written compactly
and durably (spec 7.6, 7.7).
"""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference.enclave.limits import MAX_METADATA_BYTES, MAX_METADATA_ENTRIES
from reference.enclave.operations import default_operations

from .test_access_tokens import FUTURE, make_token
from .test_eoa import TO, ok, refused
from .test_service import call, make_enclave

SURROGATE = "\ud800"


@pytest.fixture
def enclave(tmp_path):
    return make_enclave(tmp_path / "vault.db")


@pytest.fixture
def account(enclave):
    data = ok(call(enclave, {"operation": "serviceAccount:create", "options": {"metadata": {}}}))
    eoa = ok(call(enclave, {"operation": "eoa:create", "auth": {"adminKey": data["adminKey"]}, "options": {}}))
    return data, eoa


def run(enclave, operation, auth=None, options=None):
    request = {"operation": operation}
    if auth is not None:
        request["auth"] = auth
    if options is not None:
        request["options"] = options
    return call(enclave, request)


@pytest.mark.parametrize(("operation", "auth", "options", "code"), [
    ("serviceAccount:get", {"adminKey": SURROGATE}, None, "auth_invalid_admin_key"),
    ("serviceAccount:get", {"adminKey": "sa_adm_" + SURROGATE * 3}, None, "auth_invalid_admin_key"),
    ("serviceAccount:rotate", {"rotationCode": SURROGATE}, None, "auth_invalid_rotation_code"),
    ("eoa:list", {"accessToken": SURROGATE}, None, "auth_invalid_access_token"),
    ("eoa:list", {"accessToken": "vt_sat_" + SURROGATE}, None, "auth_invalid_access_token"),
    ("serviceAccount:create", None, {"metadata": {"k": SURROGATE}}, "invalid_input"),
    ("serviceAccount:create", None, {"metadata": {SURROGATE: "v"}}, "invalid_input"),
])
def test_lone_surrogates_get_the_documented_error(enclave, operation, auth, options, code):
    refused(run(enclave, operation, auth, options), code)


def test_lone_surrogates_in_eoa_and_token_options(enclave, account):
    data, eoa = account
    admin = {"adminKey": data["adminKey"]}
    refused(run(enclave, "eoa:create", admin, {"metadata": {"k": SURROGATE}}), "invalid_input")
    refused(run(enclave, "eoa:signMessage", admin, {"from": eoa["address"], "message": SURROGATE}), "invalid_input")
    refused(run(enclave, "eoa:signMessage", admin, {"from": SURROGATE, "message": "x"}), "invalid_input")
    refused(run(enclave, "accessToken:revoke", admin, {"id": SURROGATE}), "not_found")
    refused(run(enclave, "accessToken:create", admin, {"policies": [{"type": "eoa:signMessage",
                                                                     "messagePattern": SURROGATE}],
                                                       "expiresAt": FUTURE}), "invalid_input")
    token = make_token(enclave, data["adminKey"], [{"type": "eoa:signMessage", "messagePattern": "x"}])["accessToken"]
    refused(run(enclave, "eoa:signMessage", {"accessToken": token}, {"from": eoa["address"], "message": "x" + SURROGATE}),
            "invalid_input")  # the input is refused before the pattern would be searched


def test_metadata_is_bounded_but_64_kib_is_accepted(enclave):
    ok(run(enclave, "serviceAccount:create", None, {"metadata": {"long": "x" * 65536}}))
    refused(run(enclave, "serviceAccount:create", None, {"metadata": {"long": "x" * MAX_METADATA_BYTES}}),
            "invalid_input")
    many = {f"k{i}": "" for i in range(MAX_METADATA_ENTRIES + 1)}
    refused(run(enclave, "serviceAccount:create", None, {"metadata": many}), "invalid_input")


def test_records_are_stored_as_utf8_not_escapes(tmp_path):
    enclave = make_enclave(tmp_path / "vault.db")
    astral = "\U0001f510" * 10_000  # 40,000 bytes of UTF-8; 120,000 as \ud83d\udd10 escapes
    ok(run(enclave, "serviceAccount:create", None, {"metadata": {"k": astral}}))
    with sqlite3.connect(tmp_path / "vault.db") as db:
        largest = db.execute("SELECT max(length(v)) FROM entries").fetchone()[0]
    assert largest < 41_000, largest


def test_commits_are_durable_before_they_are_acknowledged(enclave):
    # synchronous=FULL (2): with WAL's NORMAL an acknowledged rotation may roll back on power loss
    assert enclave.store._kv._db.execute("PRAGMA synchronous").fetchone()[0] == 2


# --- a generated sweep of every operation ------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**300, max_value=2**300)
    | st.floats(allow_nan=False) | st.text(max_size=40) | st.sampled_from([SURROGATE, "0x", "0x" + "ab" * 20, TO]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
OPTION_NAMES = st.sampled_from(["from", "message", "format", "chainId", "transaction", "typedData", "authorization",
                                "structuredMessage", "metadata", "page", "pageSize", "policies", "expiresAt", "id",
                                "nonce"])


@pytest.fixture
def sweep(tmp_path_factory):
    enclave = make_enclave(tmp_path_factory.mktemp("sweep") / "vault.db")
    data = ok(run(enclave, "serviceAccount:create", None, {}))
    eoa = ok(run(enclave, "eoa:create", {"adminKey": data["adminKey"]}, {}))
    everything = [{"type": t} for t in ("eoa:create", "eoa:read", "eoa:signMessage", "eoa:signTypedData",
                                        "eoa:signAuthorization")]
    everything += [{"type": "eoa:signTransaction", "payloadPatterns": {}},
                   {"type": "eoa:signStructuredMessage", "structuredPatterns": {}},
                   {"type": "accessToken:read", "revealSensitive": False}]
    token = make_token(enclave, data["adminKey"], everything)["accessToken"]
    return enclave, data, eoa, token


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_no_operation_answers_internal_error_to_any_options(sweep, data):
    enclave, account, eoa, token = sweep
    operation = data.draw(st.sampled_from(sorted(default_operations())))
    auth = data.draw(st.sampled_from([{"adminKey": account["adminKey"]}, {"accessToken": token}, None])
                     | st.dictionaries(st.sampled_from(["adminKey", "accessToken", "rotationCode", "sessionToken"]),
                                       JSON, max_size=2))
    options = data.draw(st.dictionaries(OPTION_NAMES, JSON, max_size=5))
    if data.draw(st.booleans()):
        options["from"] = eoa["address"]
    reply = run(enclave, operation, auth, options)
    assert reply.get("error") is None or reply["error"]["code"] != "internal_server_error", (operation, auth, options)
