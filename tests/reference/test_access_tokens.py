"""Access tokens, policies and signed tokens through the enclave's request loop (docs/spec/13), in-process.

Signed tokens are built here the way the published client builds them (``createSignedAccessToken``:
X25519 + HKDF "encryption" + XChaCha20-Poly1305 of the base token, JWS HS256 keyed by SHA-256 of
it), with PyNaCl and hmac, not with the reference's code. Signatures are checked by recovery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from datetime import datetime, timedelta, timezone

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from harness.protocol import envelope as client_envelope

from .test_eoa import TO, ok, refused
from .test_service import call, make_enclave

FUTURE = "2999-01-01T00:00:00Z"


class Clock:
    def __init__(self):
        self.moment = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)

    def __call__(self):
        return self.moment


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def enclave(tmp_path, clock):
    return make_enclave(tmp_path / "vault.db", now=clock)


def admin(enclave):
    data = ok(call(enclave, {"operation": "serviceAccount:create", "options": {"metadata": {}}}))
    return data


def run(enclave, operation, auth, options=None):
    request = {"operation": operation, "auth": auth}
    if options is not None:
        request["options"] = options
    return call(enclave, request)


def make_token(enclave, admin_key, policies, expires_at=FUTURE, metadata=None):
    options = {"policies": policies, "expiresAt": expires_at}
    if metadata is not None:
        options["metadata"] = metadata
    return ok(run(enclave, "accessToken:create", {"adminKey": admin_key}, options))


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed_token(enclave, base: str, policies, exp: int, header=None, claims_extra=None, key=None) -> str:
    secret, nonce = os.urandom(32), os.urandom(24)
    sealed = client_envelope.seal(enclave.public_key, base.encode(), ephemeral_secret=secret, nonce=nonce)
    claims = {"encrypted_token": sealed.ciphertext.hex(), "ephemeral_public_key": sealed.ephemeral_public_key.hex(),
              "exp": exp, "iat": int(time.time()), "nonce": nonce.hex(), "policies": policies, **(claims_extra or {})}
    signing_input = b64url(json.dumps(header or {"alg": "HS256"}).encode()) + "." + b64url(json.dumps(claims).encode())
    mac = hmac.new(key or hashlib.sha256(base.encode()).digest(), signing_input.encode(), hashlib.sha256).digest()
    return "vt_sat_" + signing_input + "." + b64url(mac)


@pytest.fixture
def account(enclave):
    data = admin(enclave)
    eoa = ok(run(enclave, "eoa:create", {"adminKey": data["adminKey"]}, {"metadata": {"team": "pay", "tier": 3}}))
    other = ok(run(enclave, "eoa:create", {"adminKey": data["adminKey"]}, {"metadata": {"team": "ops"}}))
    return data["adminKey"], data["id"], eoa, other


def sign_message(enclave, token, eoa, message="hello", **extra):
    return run(enclave, "eoa:signMessage", {"accessToken": token}, {"from": eoa["address"], "message": message, **extra})


def recovered(reply, message="hello") -> str:
    signature = ok(reply)["signature"]
    return Account.recover_message(encode_defunct(text=message), signature=bytes.fromhex(signature))


# --- create, list, revoke ----------------------------------------------------------------------


def test_create_answers_access_token_data_and_the_token_works(enclave, account):
    admin_key, account_id, eoa, _ = account
    policies = [{"type": "eoa:signMessage", "allowlist": [eoa["address"].lower()]}]
    data = make_token(enclave, admin_key, policies, "2999-01-01T01:00:00.123456+01:00", {"purpose": "ci"})
    assert set(data) == {"accessToken", "id", "issuerId", "issuerType", "policies", "expiresAt", "metadata",
                         "createdAt", "updatedAt", "revokedAt", "isRotated"}
    assert data["accessToken"].startswith("vt_act_") and len(data["accessToken"]) == 7 + 64
    assert (data["issuerId"], data["issuerType"], data["policies"], data["metadata"]) == (
        account_id, "serviceAccount", policies, {"purpose": "ci"})
    assert data["expiresAt"] == "2999-01-01T00:00:00.123Z"
    assert (data["revokedAt"], data["isRotated"]) == (None, False)
    assert recovered(sign_message(enclave, data["accessToken"], eoa)) == eoa["address"]


@pytest.mark.parametrize("policies", [
    [], None, "eoa:read", [{"type": "eoa:delete"}], [{"type": "eoa:read", "extra": 1}],
    [{"type": "eoa:signTransaction"}],  # payloadPatterns is required
    [{"type": "accessToken:read"}],  # revealSensitive is required
    [{"type": "eoa:signMessage", "messagePattern": "(a)\\1"}],  # back-reference: not RE2
    [{"type": "eoa:signMessage", "messagePattern": "("}],
    [{"type": "eoa:signMessage", "messagePattern": "a" * 1025}],
    [{"type": "eoa:signMessage", "chainId": "1"}],
    [{"type": "eoa:signMessage", "allowlist": ["0x12"]}],
    [{"type": "eoa:read", "metadataPatterns": [{"key": "a", "rule": {"op": "greaterThan", "value": 1.5}}]}],
    [{"type": "eoa:read", "metadataPatterns": [{"key": "a", "rule": {"op": "between", "value": 1}}]}],
    [{"type": "eoa:read", "metadataPatterns": [{"key": "a", "rule": {"pattern": "x", "op": "equalTo"}}]}],
    [{"type": "eoa:read", "metadataPatterns": [{"key": "a", "rule": {"op": "equalTo", "value": "1e3"}}]}],
    [{"type": "eoa:signTransaction", "payloadPatterns": {"gas": [{"pattern": "1"}]}}],  # not a field
    [{"type": "eoa:signTransaction", "payloadPatterns": {"data": []}}],
    [{"type": "eoa:signTransaction", "payloadPatterns": {"to": [{"op": "equalTo", "value": 1}]}}],
    [{"type": "eoa:signAuthorization", "payloadPatterns": {"address": {"op": "lessThan", "value": 1}}}],
    [{"type": "eoa:signStructuredMessage", "structuredPatterns": {"useropV08": {}}}],
    [{"type": "eoa:signStructuredMessage", "structuredPatterns": {"useropV06": {"factory": {"pattern": "x"}}}}],
    [{"type": "solana:signMessage", "allowlist": ["0x1234"]}],  # not a base58 public key
    [{"type": "solana:signTransaction", "payloadPatterns": {"to": [{"pattern": "x"}]}}],  # no such field (14.4)
    [{"type": "solana:signTransaction", "transactionPatterns": {"programs": {"type": "maybe", "programs": []}}}],
    [{"type": "solana:signTransaction", "transactionPatterns": {"maxInstructions": -1}}],
    [{"type": "solana:signTransaction", "transactionPatterns": {"canPayFees": "no"}}],
    [{"type": "solana:signTransaction", "transactionPatterns": {"feePayer": "x"}}],
    [{"type": "solana:read", "revealSensitive": True}],
])
def test_invalid_policies_are_refused_and_nothing_is_created(enclave, account, policies):
    admin_key = account[0]
    reply = run(enclave, "accessToken:create", {"adminKey": admin_key}, {"policies": policies, "expiresAt": FUTURE})
    refused(reply, "invalid_input")
    assert ok(run(enclave, "accessToken:list", {"adminKey": admin_key}))["totalRecords"] == 0


@pytest.mark.parametrize("expires_at", ["2026-12-03T11:59:59Z", "2026-12-03T12:00:00Z", "2999-01-01T00:00:00",
                                        "2999-01-01", "tomorrow", 4102444800, None, "2999-02-30T00:00:00Z"])
def test_expiry_must_be_a_zoned_future_date_time(enclave, account, expires_at):
    reply = run(enclave, "accessToken:create", {"adminKey": account[0]},
                {"policies": [{"type": "eoa:read"}], "expiresAt": expires_at})
    refused(reply, "invalid_input")


def test_list_hides_the_token_and_revoke_is_immediate_and_idempotent(enclave, account, clock):
    admin_key, _, eoa, _ = account
    first = make_token(enclave, admin_key, [{"type": "eoa:signMessage"}])
    second = make_token(enclave, admin_key, [{"type": "eoa:read"}])
    listed = ok(run(enclave, "accessToken:list", {"adminKey": admin_key}))
    assert [t["id"] for t in listed["items"]] == [first["id"], second["id"]]
    assert all(t["accessToken"] not in (first["accessToken"], second["accessToken"]) for t in listed["items"])
    assert listed["items"][0]["accessToken"].endswith(first["accessToken"][-4:])

    clock.moment += timedelta(seconds=5)
    revoked = ok(run(enclave, "accessToken:revoke", {"adminKey": admin_key}, {"id": first["id"]}))
    assert revoked["revokedAt"] == revoked["updatedAt"] == "2026-12-03T12:00:05.000Z"
    refused(sign_message(enclave, first["accessToken"], eoa), "auth_invalid_access_token")
    clock.moment += timedelta(seconds=5)
    again = ok(run(enclave, "accessToken:revoke", {"adminKey": admin_key}, {"id": first["id"]}))
    assert again["revokedAt"] == revoked["revokedAt"]


def test_revoke_and_create_need_the_admin_key_and_other_accounts_are_not_found(enclave, account):
    admin_key, _, eoa, _ = account
    token = make_token(enclave, admin_key, [{"type": "eoa:signMessage"}, {"type": "accessToken:read",
                                                                          "revealSensitive": True}])
    as_token = {"accessToken": token["accessToken"]}
    refused(run(enclave, "accessToken:revoke", as_token, {"id": token["id"]}), "auth_unsupported_operation")
    refused(run(enclave, "accessToken:create", as_token, {"policies": [{"type": "eoa:read"}], "expiresAt": FUTURE}),
            "auth_unsupported_operation")
    refused(run(enclave, "serviceAccount:get", as_token), "auth_unsupported_operation")
    stranger = admin(enclave)["adminKey"]
    unknown = run(enclave, "accessToken:revoke", {"adminKey": stranger}, {"id": "00000000-0000-4000-8000-000000000000"})
    foreign = run(enclave, "accessToken:revoke", {"adminKey": stranger}, {"id": token["id"]})
    refused(foreign, "not_found")
    assert foreign["error"] == unknown["error"]
    refused(run(enclave, "accessToken:revoke", {"adminKey": admin_key}, {"id": 7}), "invalid_input")


def test_rotation_kills_tokens_and_reports_is_rotated(enclave, clock):
    data = admin(enclave)
    eoa = ok(run(enclave, "eoa:create", {"adminKey": data["adminKey"]}, {}))
    token = make_token(enclave, data["adminKey"], [{"type": "eoa:signMessage"}])
    sat = signed_token(enclave, token["accessToken"], [{"type": "eoa:signMessage"}], 4102444800)
    assert recovered(sign_message(enclave, sat, eoa)) == eoa["address"]
    rotated = ok(call(enclave, {"operation": "serviceAccount:rotate", "auth": {"rotationCode": data["rotationCode"]}}))
    refused(sign_message(enclave, token["accessToken"], eoa), "auth_invalid_access_token")
    refused(sign_message(enclave, sat, eoa), "auth_invalid_access_token")
    listed = ok(run(enclave, "accessToken:list", {"adminKey": rotated["newAdminKey"]}))
    assert [t["isRotated"] for t in listed["items"]] == [True]


def test_expired_token_is_refused(enclave, account, clock):
    admin_key, _, eoa, _ = account
    token = make_token(enclave, admin_key, [{"type": "eoa:signMessage"}], "2026-12-03T12:00:10Z")
    assert recovered(sign_message(enclave, token["accessToken"], eoa)) == eoa["address"]
    clock.moment += timedelta(seconds=10)
    refused(sign_message(enclave, token["accessToken"], eoa), "auth_invalid_access_token")


@pytest.mark.parametrize("token", [None, 7, "", "vt_act_" + "0" * 64, "vt_sat_a.b.c", "vt_sat_"])
def test_unknown_tokens_are_refused(enclave, account, token):
    refused(sign_message(enclave, token, account[2]), "auth_invalid_access_token")


def test_a_token_acts_for_its_account_only(enclave, account):
    admin_key, _, eoa, _ = account
    stranger = admin(enclave)["adminKey"]
    theirs = ok(run(enclave, "eoa:create", {"adminKey": stranger}, {}))
    token = make_token(enclave, admin_key, [{"type": "eoa:signMessage"}, {"type": "eoa:create"}, {"type": "eoa:read"}])
    refused(sign_message(enclave, token["accessToken"], theirs), "not_found")
    made = ok(run(enclave, "eoa:create", {"accessToken": token["accessToken"]}, {"metadata": {}}))
    listed = ok(run(enclave, "eoa:list", {"adminKey": admin_key}))
    assert made["address"] in [e["address"] for e in listed["items"]]
    assert theirs["address"] not in [e["address"] for e in listed["items"]]


# --- policy components ---------------------------------------------------------------------------


def test_no_component_of_the_type_is_insufficient_scope_and_nothing_happens(enclave, account):
    admin_key, _, eoa, _ = account
    token = make_token(enclave, admin_key, [{"type": "eoa:signTypedData"}])["accessToken"]
    refused(sign_message(enclave, token, eoa), "auth_insufficient_scope")
    refused(run(enclave, "eoa:create", {"accessToken": token}, {}), "auth_insufficient_scope")
    refused(run(enclave, "eoa:list", {"accessToken": token}), "auth_insufficient_scope")
    assert ok(run(enclave, "eoa:list", {"adminKey": admin_key}))["totalRecords"] == 2


def test_allowlist_and_metadata_patterns_choose_the_keys(enclave, account):
    admin_key, _, eoa, other = account
    token = make_token(enclave, admin_key, [
        {"type": "eoa:signMessage", "allowlist": [other["address"].upper().replace("0X", "0x")]},
        {"type": "eoa:signMessage", "metadataPatterns": [{"key": "tier", "rule": {"op": "greaterThan", "value": "2"}}]},
    ])["accessToken"]
    assert recovered(sign_message(enclave, token, other)) == other["address"]  # first component
    assert recovered(sign_message(enclave, token, eoa)) == eoa["address"]  # second: tier 3 > 2
    narrow = make_token(enclave, admin_key, [
        {"type": "eoa:signMessage", "metadataPatterns": [{"key": "tier", "rule": {"op": "greaterThan", "value": 3}}]},
    ])["accessToken"]
    refused(sign_message(enclave, narrow, eoa), "auth_insufficient_scope")
    refused(sign_message(enclave, narrow, other), "auth_insufficient_scope")  # no "tier" key at all


def test_message_pattern_searches_and_chain_id_must_match(enclave, account):
    admin_key, _, eoa, _ = account
    token = make_token(enclave, admin_key, [{"type": "eoa:signMessage", "messagePattern": "ell", "chainId": 8453}])
    token = token["accessToken"]
    assert recovered(sign_message(enclave, token, eoa, chainId=8453)) == eoa["address"]
    refused(sign_message(enclave, token, eoa, chainId=1), "auth_insufficient_scope")
    refused(sign_message(enclave, token, eoa), "auth_insufficient_scope")  # chainId absent
    refused(sign_message(enclave, token, eoa, message="goodbye", chainId=8453), "auth_insufficient_scope")


def _tx(**fields):
    return {"type": "0x02", "chainId": "0x1", "nonce": "0x0", "gasLimit": "0x5208", "maxFeePerGas": "0x1",
            "maxPriorityFeePerGas": "0x1", "to": TO, "value": "0x10", "accessList": [], "input": "0x", **fields}


def test_payload_patterns_compare_quantities_in_decimal_as_big_integers(enclave, account):
    admin_key, _, eoa, _ = account
    token = make_token(enclave, admin_key, [{"type": "eoa:signTransaction", "payloadPatterns": {
        "value": [{"op": "lessThan", "value": str(2**64 + 1)}, {"pattern": "^1"}],
        "to": [{"pattern": "^" + TO.lower() + "$"}],
    }}])["accessToken"]

    def sign(tx):
        return run(enclave, "eoa:signTransaction", {"accessToken": token}, {"from": eoa["address"], "transaction": tx})

    assert ok(sign(_tx(value="0x10")))["signature"]  # 16: below 2^64+1, decimal starts with 1
    assert ok(sign(_tx(value=hex(2**64))))["signature"]  # 18446744073709551616 < 2^64+1, starts with 1
    refused(sign(_tx(value=hex(2**64 + 1))), "auth_insufficient_scope")  # equal, not less
    refused(sign(_tx(value="0x20")), "auth_insufficient_scope")  # 32 does not start with 1
    refused(sign(_tx(to=None)), "auth_insufficient_scope")  # creation: `to` has no value
    refused(sign(_tx(value="0xzz")), "invalid_input")  # input is checked before the policies


def test_authorization_and_structured_patterns(enclave, account):
    admin_key, _, eoa, _ = account
    token = make_token(enclave, admin_key, [
        {"type": "eoa:signAuthorization", "payloadPatterns": {"chainId": {"op": "equalTo", "value": 8453}}},
        {"type": "eoa:signStructuredMessage", "structuredPatterns": {
            "useropV07": {"entrypoint": {"pattern": "^0x0000000071727de22e5e9d8baf0edac6f37da032$"},
                          "chainId": {"op": "equalTo", "value": 10}}}},
    ])["accessToken"]
    auth = {"accessToken": token}
    authorization = {"chainId": "8453", "address": TO, "nonce": 1}
    assert ok(run(enclave, "eoa:signAuthorization", auth, {"from": eoa["address"], "authorization": authorization}))
    refused(run(enclave, "eoa:signAuthorization", auth, {"from": eoa["address"],
                                                         "authorization": {**authorization, "chainId": "0x1"}}),
            "auth_insufficient_scope")
    op = {"sender": TO, "nonce": "0x0", "callData": "0x", "callGasLimit": "0x1", "verificationGasLimit": "0x1",
          "preVerificationGas": "0x1", "maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x1"}
    v07 = {"from": eoa["address"], "structuredMessage": {"useropV07": op}}
    assert ok(run(enclave, "eoa:signStructuredMessage", auth, {**v07, "chainId": 10}))["message"].startswith("0x")
    refused(run(enclave, "eoa:signStructuredMessage", auth, {**v07, "chainId": 11}), "auth_insufficient_scope")
    other_entry = {"useropV07": {**op, "entrypoint": TO}}
    refused(run(enclave, "eoa:signStructuredMessage", auth, {"from": eoa["address"], "chainId": 10,
                                                              "structuredMessage": other_entry}),
            "auth_insufficient_scope")
    # useropV06 is not named by the component, so it is not restricted
    v06 = {**op, "initCode": "0x", "paymasterAndData": "0x"}
    assert ok(run(enclave, "eoa:signStructuredMessage", auth, {"from": eoa["address"], "chainId": 1,
                                                               "structuredMessage": {"useropV06": v06}}))


def test_create_metadata_patterns_and_read_filtering(enclave, account):
    admin_key = account[0]
    token = make_token(enclave, admin_key, [
        {"type": "eoa:create", "requiredMetadataPatterns": [{"key": "team", "rule": {"pattern": "^pay$"}}],
         "allowedMetadataPatterns": [{"key": "note", "rule": {"pattern": ""}}]},
        {"type": "eoa:read", "metadataPatterns": [{"key": "team", "rule": {"pattern": "^pay$"}}]},
    ])["accessToken"]
    auth = {"accessToken": token}
    ok(run(enclave, "eoa:create", auth, {"metadata": {"team": "pay", "note": "x"}}))
    refused(run(enclave, "eoa:create", auth, {"metadata": {"team": "ops"}}), "auth_insufficient_scope")
    refused(run(enclave, "eoa:create", auth, {"metadata": {"team": "pay", "extra": "y"}}), "auth_insufficient_scope")
    listed = ok(run(enclave, "eoa:list", auth))
    assert listed["totalRecords"] == 2 and all(e["metadata"]["team"] == "pay" for e in listed["items"])
    assert ok(run(enclave, "eoa:list", {"adminKey": admin_key}))["totalRecords"] == 3


def test_access_token_read_lists_only_matching_tokens(enclave, account):
    admin_key = account[0]
    reader = make_token(enclave, admin_key, [{"type": "accessToken:read", "revealSensitive": True, "metadataPatterns": [
        {"key": "env", "rule": {"pattern": "^ci$"}}]}], metadata={"env": "ci"})
    make_token(enclave, admin_key, [{"type": "eoa:read"}], metadata={"env": "prod"})
    listed = ok(run(enclave, "accessToken:list", {"accessToken": reader["accessToken"]}))
    assert [t["id"] for t in listed["items"]] == [reader["id"]] and listed["totalRecords"] == 1
    assert reader["accessToken"] not in json.dumps(listed)


def test_catastrophic_pattern_answers_quickly(enclave, account):
    admin_key, _, eoa, _ = account
    token = make_token(enclave, admin_key, [{"type": "eoa:signMessage", "messagePattern": "^(a+)+$"}])["accessToken"]
    started = time.monotonic()
    refused(sign_message(enclave, token, eoa, message="a" * 100_000 + "!"), "auth_insufficient_scope")
    assert time.monotonic() - started < 2  # backtracking engines take longer than the universe's age here
    assert recovered(sign_message(enclave, token, eoa, message="aaa"), "aaa") == eoa["address"]


# --- signed access tokens ------------------------------------------------------------------------


def test_signed_token_narrows_the_base_token(enclave, account):
    admin_key, _, eoa, other = account
    base = make_token(enclave, admin_key, [{"type": "eoa:signMessage"}, {"type": "eoa:read"}])["accessToken"]
    sat = signed_token(enclave, base, [{"type": "eoa:signMessage", "allowlist": [eoa["address"]]}], 4102444800)
    assert recovered(sign_message(enclave, sat, eoa)) == eoa["address"]
    refused(sign_message(enclave, sat, other), "auth_insufficient_scope")  # SAT narrows
    refused(run(enclave, "eoa:list", {"accessToken": sat}), "auth_insufficient_scope")  # not in the SAT
    wider = signed_token(enclave, base, [{"type": "eoa:signTypedData"}], 4102444800)
    typed = {"types": {"EIP712Domain": []}, "primaryType": "EIP712Domain", "domain": {}, "message": {}}
    refused(run(enclave, "eoa:signTypedData", {"accessToken": wider}, {"from": eoa["address"], "typedData": typed}),
            "auth_insufficient_scope")  # a SAT cannot widen


@pytest.mark.parametrize("fault", ["expired", "alg-none", "extra-header", "bad-mac", "wrong-key", "extra-claim",
                                   "float-exp", "bad-policy", "sat-in-sat", "revoked-base", "padding"])
def test_signed_token_faults_are_invalid_tokens(enclave, account, clock, fault):
    admin_key, _, eoa, _ = account
    base = make_token(enclave, admin_key, [{"type": "eoa:signMessage"}])
    token, exp, policies = base["accessToken"], int(clock.moment.timestamp()) + 60, [{"type": "eoa:signMessage"}]
    sat = {
        "expired": lambda: signed_token(enclave, token, policies, int(clock.moment.timestamp())),
        "alg-none": lambda: signed_token(enclave, token, policies, exp, header={"alg": "none"}),
        "extra-header": lambda: signed_token(enclave, token, policies, exp, header={"alg": "HS256", "typ": "JWT"}),
        "bad-mac": lambda: signed_token(enclave, token, policies, exp)[:-2] + "AA",
        "wrong-key": lambda: signed_token(enclave, token, policies, exp, key=b"k" * 32),
        "extra-claim": lambda: signed_token(enclave, token, policies, exp, claims_extra={"aud": "x"}),
        "float-exp": lambda: signed_token(enclave, token, policies, exp + 0.5),
        "bad-policy": lambda: signed_token(enclave, token, [{"type": "eoa:fly"}], exp),
        "sat-in-sat": lambda: signed_token(enclave, signed_token(enclave, token, policies, exp), policies, exp),
        "revoked-base": lambda: signed_token(enclave, token, policies, exp),
        "padding": lambda: signed_token(enclave, token, policies, exp) + "=",
    }[fault]()
    if fault == "revoked-base":
        ok(run(enclave, "accessToken:revoke", {"adminKey": admin_key}, {"id": base["id"]}))
    refused(sign_message(enclave, sat, eoa), "auth_invalid_access_token")
    # the same token without the fault works (the fixture is not broken)
    assert recovered(sign_message(enclave, signed_token(enclave, make_token(enclave, admin_key, policies)["accessToken"],
                                                        policies, exp), eoa)) == eoa["address"]


def test_a_type_rule_sees_the_encoded_type_whatever_alias_was_sent(enclave, account):
    admin_key, _, eoa, _ = account
    token = make_token(enclave, admin_key, [{"type": "eoa:signTransaction", "payloadPatterns": {
        "type": [{"op": "equalTo", "value": 4}]}}])["accessToken"]
    authorization = {"chainId": "0x1", "address": TO, "nonce": 0, "yParity": 0, "r": "0x1", "s": "0x1"}
    for alias in ("0x04", "0x05"):
        tx = _tx(type=alias, authorizationList=[authorization])
        reply = run(enclave, "eoa:signTransaction", {"accessToken": token}, {"from": eoa["address"], "transaction": tx})
        assert ok(reply)["signature"].startswith("04"), alias
