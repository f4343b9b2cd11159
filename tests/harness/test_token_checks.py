"""The harness's ``tokens/*`` checks (harness/suites/tokens.py) pass a correct Vault and FAIL a
Vault with one client-observable defect of spec section 13 each.

The Vault here is a small in-process fake (``FakeVault``, below) written from the spec, not from
the reference: it speaks the real envelope (the harness's own envelope module, server side) and
implements service accounts, EOAs and access tokens just far enough for the checks. Each name in
``defects`` breaks one requirement; each test runs the check that must notice it. The last test
runs every check against the reference, in process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import time
import uuid
from datetime import datetime, timezone

import httpx
import pytest
import rlp
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_keys import keys as eth_keys
from eth_utils import keccak, to_checksum_address

from harness.protocol import envelope
from harness.protocol.client import VaultClient
from harness.suites import policy_model as model
from harness.suites.registry import CheckFailed, Context, Observation, all_checks

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}\Z")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})\Z")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*\Z")
_HEX = re.compile(r"^[0-9a-fA-F]*\Z")
SAT_CLAIMS = {"encrypted_token", "ephemeral_public_key", "nonce", "exp", "iat", "policies"}


class Refused(Exception):
    def __init__(self, code: str, message: str = "refused"):
        super().__init__(code)
        self.code, self.message = code, message


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _b64decode(part: str) -> bytes:
    if not _B64URL.match(part):
        raise Refused("auth_invalid_access_token", "not base64url")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class FakeVault:
    def __init__(self, defects: frozenset | set = frozenset()):
        self.defects = set(defects)
        self.static_secret = os.urandom(32)
        self.public_key = envelope.public_key(self.static_secret)
        self.accounts: dict[str, dict] = {}
        self.eoas: dict[str, dict] = {}  # lowercase address -> record
        self.tokens: dict[str, dict] = {}  # token value -> record
        self.token_order: list[str] = []

    # ---- transport ------------------------------------------------------------------------------
    def client(self) -> VaultClient:
        def route(request: httpx.Request) -> httpx.Response:
            if request.method == "GET" and request.url.path == "/api/v1/enclave":
                return httpx.Response(200, json={"publicKey": self.public_key.hex()})
            sealed = envelope.Envelope.from_json(json.loads(request.content))
            plaintext = envelope.open_envelope(sealed, self.static_secret)
            reply = self.handle(json.loads(plaintext))
            secret, nonce = os.urandom(32), os.urandom(24)
            key = envelope.derive_key(secret, sealed.ephemeral_public_key)
            answer = envelope.Envelope(envelope.public_key(secret), nonce,
                                       envelope.encrypt(key, nonce, json.dumps(reply).encode()))
            return httpx.Response(200, json=answer.to_json())

        client = VaultClient("http://vault.test")
        client._http.close()
        client._http = httpx.Client(base_url=client.base_url, transport=httpx.MockTransport(route))
        return client

    def handle(self, request: dict) -> dict:
        operation = request.get("operation")
        handler = getattr(self, "op_" + str(operation).replace(":", "_"), None)
        try:
            if handler is None:
                raise Refused("unknown_operation")
            data = handler(request.get("auth"), request.get("options") or {})
            return {"success": True, "data": data, "error": None}
        except Refused as refusal:
            return {"success": False, "data": None, "error": {"code": refusal.code, "message": refusal.message}}

    # ---- authentication (§6.2, §13.4, §13.7) ------------------------------------------------------
    def _admin(self, auth) -> dict:
        key = (auth or {}).get("adminKey") if isinstance(auth, dict) else None
        for account in self.accounts.values():
            if isinstance(key, str) and hmac.compare_digest(account["adminKey"], key):
                return account
        raise Refused("auth_invalid_admin_key")

    def _base(self, value) -> dict:
        record = self.tokens.get(value) if isinstance(value, str) else None
        if record is None:
            raise Refused("auth_invalid_access_token",
                          f"no token {value}" if "error-echoes-credential" in self.defects else "refused")
        lagging = "revoke-lags" in self.defects and time.monotonic() - record.get("revokedMono", 0) < 0.3
        if record["revokedAt"] is not None and "revoke-not-immediate" not in self.defects and not lagging:
            raise Refused("auth_invalid_access_token", "revoked")
        if _now() >= record["expiresAt"] and "ignore-expiry" not in self.defects:
            raise Refused("auth_invalid_access_token", "expired")
        account = self.accounts[record["accountId"]]
        if record["epoch"] != account["epoch"] and "rotation-keeps-tokens" not in self.defects:
            raise Refused("auth_invalid_access_token", "rotated")
        return record

    def _signed(self, value: str) -> tuple[dict, list]:
        parts = value[len("vt_sat_"):].split(".")
        if len(parts) != 3:
            raise Refused("auth_invalid_access_token")
        header, claims, signature = (_b64decode(part) for part in parts)
        try:
            header, claims = json.loads(header), json.loads(claims)
        except ValueError:
            raise Refused("auth_invalid_access_token") from None
        alg_none = header == {"alg": "none"} and "sat-alg-none" in self.defects
        if header != {"alg": "HS256"} and not alg_none:
            raise Refused("auth_invalid_access_token", "header")
        if not isinstance(claims, dict) or set(claims) != SAT_CLAIMS or not _is_int(claims["exp"]) \
                or not _is_int(claims["iat"]):
            raise Refused("auth_invalid_access_token", "claims")
        for name, length in (("ephemeral_public_key", 32), ("nonce", 24), ("encrypted_token", None)):
            text = claims[name]
            if not isinstance(text, str) or len(text) % 2 or not _HEX.match(text):
                raise Refused("auth_invalid_access_token", name)
            if (length is not None and len(text) != 2 * length) or (length is None and len(text) < 32):
                raise Refused("auth_invalid_access_token", name)
        if model.policies_problem(claims["policies"]) is not None:
            raise Refused("auth_invalid_access_token", "policies")
        try:
            key = envelope.derive_key(self.static_secret, bytes.fromhex(claims["ephemeral_public_key"]))
            base = envelope.decrypt(key, bytes.fromhex(claims["nonce"]),
                                    bytes.fromhex(claims["encrypted_token"])).decode()
        except (envelope.EnvelopeError, UnicodeDecodeError):
            raise Refused("auth_invalid_access_token", "sealed token") from None
        if base.startswith("vt_sat_"):
            raise Refused("auth_invalid_access_token", "nested")
        record = self._base(base)
        expected = hmac.new(hashlib.sha256(base.encode()).digest(), f"{parts[0]}.{parts[1]}".encode(),
                            hashlib.sha256).digest()
        if not alg_none and not hmac.compare_digest(expected, signature):
            raise Refused("auth_invalid_access_token", "signature")
        if time.time() >= claims["exp"] and "sat-no-exp-check" not in self.defects:
            raise Refused("auth_invalid_access_token", "exp")
        return record, claims["policies"]

    def _principal(self, auth, operation: str) -> tuple[dict, list | None]:
        """(account, policy sets that must all allow; None for the admin key)."""
        if not isinstance(auth, dict) or not auth:
            raise Refused("auth_missing")
        if "adminKey" in auth:
            return self._admin(auth), None
        if "accessToken" not in auth:
            raise Refused("auth_missing")
        value = auth["accessToken"]
        if isinstance(value, str) and value.startswith("vt_sat_"):
            record, extra = self._signed(value)
            sets = [record["policies"]] if "no-sat-narrowing" in self.defects else [record["policies"], extra]
        else:
            record = self._base(value)
            sets = [record["policies"]]
        allowed_elsewhere = operation == "serviceAccount:get" and "token-gets-account" in self.defects
        allowed_create = operation == "accessToken:create" and "token-creates-token" in self.defects
        if operation not in model.TOKEN_OPERATIONS and not (allowed_elsewhere or allowed_create):
            raise Refused("auth_unsupported_operation")
        return self.accounts[record["accountId"]], sets

    # ---- policy decisions, with the defects a Vault might have ------------------------------------
    def _allows(self, sets: list | None, operation: str, options: dict, metadata: dict | None) -> bool:
        if sets is None:
            return True
        try:
            return all(self._allows_one(policies, operation, options, metadata) for policies in sets)
        except model.PatternUnknown:  # text without a UTF-8 form: this Vault lets no pattern hold for it
            if "surrogate-crash" in self.defects:
                raise Refused("internal_server_error", "internal error") from None
            return False

    def _allows_one(self, policies: list, operation: str, options: dict, metadata) -> bool:
        if "ignore-allowlist" in self.defects:
            policies = [{k: v for k, v in c.items() if k != "allowlist"} for c in policies]
        if "create-allowed-ignored" in self.defects:
            policies = [{k: v for k, v in c.items() if k != "allowedMetadataPatterns"} for c in policies]
        if "python-re" in self.defects and operation == "eoa:signMessage":  # Python's engine, not RE2
            for component in policies:
                pattern = component.get("messagePattern")
                if pattern is not None and not re.search(pattern, options.get("message", "")):
                    return False
            policies = [{k: v for k, v in c.items() if k != "messagePattern"} for c in policies]
        if "match-not-search" in self.defects and operation == "eoa:signMessage":
            for component in policies:
                pattern = component.get("messagePattern")
                if pattern is not None and not re.match(pattern, options.get("message", "")):
                    return False
        if operation == "eoa:signTransaction":
            tx = options["transaction"]
            if "hex-quantity-text" in self.defects:  # patterns searched in the quantity as sent
                policies = _rewrite(policies, lambda name, r: None if "op" in r or model.TRANSACTION_FIELDS[name]
                                    != model.QUANTITY else bool(re.search(r["pattern"], str(tx.get(name)))))
            if "float-compare" in self.defects:  # number rules compared as floats
                policies = _rewrite(policies, lambda name, r: None if "pattern" in r else _float_holds(r, tx.get(name)))
            if "to-null-matches-empty" in self.defects and tx.get("to") is None:  # to null read as ""
                policies = _rewrite(policies, lambda name, r: None if name != "to" else bool(
                    re.search(r["pattern"], "")))
        if "structured-version-strict" in self.defects and operation == "eoa:signStructuredMessage":
            version = next(iter(options.get("structuredMessage") or {}), None)
            policies = [c for c in policies if c.get("type") != operation or not c["structuredPatterns"]
                        or version in c["structuredPatterns"]]
        return model.allows(policies, operation, options, metadata)

    def _shows(self, sets, operation: str, metadata: dict) -> bool:
        if sets is None or ("read-filter-ignored" in self.defects and operation == "eoa:list"):
            return True
        try:
            return all(model.shows(policies, operation, metadata) for policies in sets)
        except model.PatternUnknown:
            if "surrogate-crash" in self.defects:
                raise Refused("internal_server_error", "internal error") from None
            return False

    # ---- operations -----------------------------------------------------------------------------
    def op_ping(self, auth, options):
        return {"pong": options.get("message"), "timestamp": int(time.time())}

    def op_serviceAccount_create(self, auth, options):
        stamp = _stamp(_now())
        account = {"id": str(uuid.uuid4()), "adminKey": "sa_adm_" + os.urandom(32).hex(),
                   "rotationCode": "sa_rot_" + os.urandom(32).hex(), "createdAt": stamp, "updatedAt": stamp,
                   "metadata": options.get("metadata") or {}, "epoch": 0}
        self.accounts[account["id"]] = account
        return {k: account[k] for k in ("id", "adminKey", "rotationCode", "createdAt", "updatedAt")}

    def op_serviceAccount_get(self, auth, options):
        account, _ = self._principal(auth, "serviceAccount:get")
        return {k: account[k] for k in ("id", "metadata", "createdAt", "updatedAt")}

    def op_serviceAccount_rotate(self, auth, options):
        code = (auth or {}).get("rotationCode")
        account = next((a for a in self.accounts.values() if a["rotationCode"] == code), None)
        if account is None:
            raise Refused("auth_invalid_rotation_code")
        account["adminKey"], account["rotationCode"] = "sa_adm_" + os.urandom(32).hex(), "sa_rot_" + os.urandom(32).hex()
        account["epoch"] += 1
        account["updatedAt"] = _stamp(_now())
        return {"newAdminKey": account["adminKey"], "newRotationCode": account["rotationCode"]}

    def op_enclave_keyPolicy(self, auth, options):
        self._principal(auth, "enclave:keyPolicy")
        raise Refused("unknown_operation")

    @staticmethod
    def _paging(options) -> tuple[int, int]:
        page, size = options.get("page", 1), options.get("pageSize", 20)
        if not (_is_int(page) and page > 0 and _is_int(size) and 0 < size <= 100):
            raise Refused("invalid_input", "paging")
        return page, size

    @staticmethod
    def _page(items: list, page: int, size: int) -> dict:
        return {"items": items[(page - 1) * size:page * size], "page": page, "pageSize": size,
                "totalRecords": len(items)}

    def op_eoa_create(self, auth, options):
        account, sets = self._principal(auth, "eoa:create")
        metadata = options.get("metadata", {})
        if not isinstance(metadata, dict) or not all(isinstance(v, (str, int, float, bool)) for v in metadata.values()):
            raise Refused("invalid_input", "metadata")
        if sets is not None and not all(model.has_component(p, "eoa:create") for p in sets):
            raise Refused("auth_insufficient_scope")
        if not self._allows(sets, "eoa:create", options, None):
            raise Refused("auth_insufficient_scope")
        key = Account.create()
        stamp = _stamp(_now())
        record = {"id": str(uuid.uuid4()), "address": key.address, "metadata": metadata, "createdAt": stamp,
                  "updatedAt": stamp, "key": key, "accountId": account["id"]}
        self.eoas[key.address.lower()] = record
        return {k: record[k] for k in ("id", "address", "metadata", "createdAt", "updatedAt")}

    def op_eoa_list(self, auth, options):
        account, sets = self._principal(auth, "eoa:list")
        if sets is not None and not all(model.has_component(p, "eoa:list") for p in sets):
            raise Refused("auth_insufficient_scope")
        page, size = self._paging(options)
        items = [{k: r[k] for k in ("id", "address", "metadata", "createdAt", "updatedAt")}
                 for r in self.eoas.values() if r["accountId"] == account["id"]
                 and self._shows(sets, "eoa:list", r["metadata"])]
        return self._page(items, page, size)

    def _signer(self, auth, options, operation: str) -> tuple[dict, list | None]:
        """The order of §13.4: token, a component of the type, from, then (the caller) input and components."""
        account, sets = self._principal(auth, operation)
        if sets is not None and not all(model.has_component(p, operation) for p in sets) \
                and "from-before-scope" not in self.defects:
            raise Refused("auth_insufficient_scope")
        sender = options.get("from")
        if not isinstance(sender, str) or not _ADDRESS.match(sender):
            raise Refused("invalid_input", "from")
        record = self.eoas.get(sender.lower())
        if record is None or (record["accountId"] != account["id"] and "foreign-eoa-visible" not in self.defects):
            raise Refused("not_found")
        if sets is not None and not all(model.has_component(p, operation) for p in sets):
            raise Refused("auth_insufficient_scope")
        return record, sets

    def _decide(self, sets, operation, options, record):
        if not self._allows(sets, operation, options, record["metadata"]):
            raise Refused("auth_insufficient_scope")

    def op_eoa_signMessage(self, auth, options):
        record, sets = self._signer(auth, options, "eoa:signMessage")
        message, form = options.get("message"), options.get("format", "text")
        if not isinstance(message, str) or form not in ("text", "hex") or (
                not _utf8(message) and "surrogate-crash" not in self.defects):
            raise Refused("invalid_input", "message")
        self._decide(sets, "eoa:signMessage", options, record)
        signable = encode_defunct(hexstr=message) if form == "hex" else encode_defunct(text=message)
        return {"signature": record["key"].sign_message(signable).signature.hex().removeprefix("0x")}

    def op_eoa_signTypedData(self, auth, options):
        record, sets = self._signer(auth, options, "eoa:signTypedData")
        self._decide(sets, "eoa:signTypedData", options, record)
        signable = encode_typed_data(full_message=options["typedData"])
        return {"signature": record["key"].sign_message(signable).signature.hex().removeprefix("0x")}

    def op_eoa_signTransaction(self, auth, options):
        record, sets = self._signer(auth, options, "eoa:signTransaction")
        tx = options.get("transaction")
        if not isinstance(tx, dict) or model.quantity(tx.get("type")) not in (0, 1, 2, 4, 5):
            raise Refused("invalid_input", "transaction")
        self._decide(sets, "eoa:signTransaction", options, record)
        fields = {"type": model.quantity(tx["type"]), "chainId": model.quantity(tx["chainId"]),
                  "nonce": model.quantity(tx["nonce"]), "gas": model.quantity(tx["gasLimit"]),
                  "maxFeePerGas": model.quantity(tx["maxFeePerGas"]),
                  "maxPriorityFeePerGas": model.quantity(tx["maxPriorityFeePerGas"]),
                  "value": model.quantity(tx["value"]), "data": tx.get("input", "0x"), "accessList": []}
        if tx.get("to") is not None:
            fields["to"] = to_checksum_address(tx["to"])
        if fields["type"] in (4, 5):  # 7702: the client's 0x05 is encoded as type 4
            fields["type"] = 4
            fields["authorizationList"] = [
                {"chainId": model.quantity(a["chainId"]), "address": to_checksum_address(a["address"]),
                 "nonce": model.quantity(a["nonce"]), "yParity": a["yParity"], "r": int(a["r"], 16),
                 "s": int(a["s"], 16)} for a in tx["authorizationList"]]
        signed = record["key"].sign_transaction(fields)
        return {"signature": signed.raw_transaction.hex().removeprefix("0x")}

    def op_eoa_signAuthorization(self, auth, options):
        record, sets = self._signer(auth, options, "eoa:signAuthorization")
        authorization = options.get("authorization")
        if not isinstance(authorization, dict):
            raise Refused("invalid_input", "authorization")
        self._decide(sets, "eoa:signAuthorization", options, record)
        chain_id, nonce = model.quantity(authorization["chainId"]), model.quantity(authorization["nonce"])
        digest = keccak(b"\x05" + rlp.encode([chain_id, bytes.fromhex(authorization["address"][2:]), nonce]))
        signature = eth_keys.PrivateKey(record["key"].key).sign_msg_hash(digest)
        return {"signedAuthorization": {"chainId": authorization["chainId"], "address": authorization["address"],
                                        "nonce": nonce, "yParity": signature.v, "r": hex(signature.r),
                                        "s": hex(signature.s)}}

    def op_eoa_signStructuredMessage(self, auth, options):
        record, sets = self._signer(auth, options, "eoa:signStructuredMessage")
        if not isinstance(options.get("structuredMessage"), dict) or not _is_int(options.get("chainId")):
            raise Refused("invalid_input", "structuredMessage")
        self._decide(sets, "eoa:signStructuredMessage", options, record)
        digest = keccak(json.dumps(options["structuredMessage"], sort_keys=True).encode())  # not the 4337 hash
        signed = record["key"].sign_message(encode_defunct(primitive=digest))
        return {"signature": signed.signature.hex().removeprefix("0x"), "message": "0x" + digest.hex()}

    # ---- access tokens (§13.1-§13.3) ---------------------------------------------------------------
    def _token_data(self, record: dict, *, reveal: bool) -> dict:
        account = self.accounts[record["accountId"]]
        value = record["value"]
        data = {"accessToken": value if reveal or "list-reveals-token" in self.defects else
                "vt_act_…" + value[-4:],
                "id": record["id"], "issuerId": record["accountId"], "issuerType": "serviceAccount",
                "policies": record["policies"], "expiresAt": record["expiresAtText"], "metadata": record["metadata"],
                "createdAt": record["createdAt"], "updatedAt": record["updatedAt"],
                "revokedAt": record["revokedAt"], "isRotated": record["epoch"] != account["epoch"]}
        if "missing-isRotated" in self.defects:
            del data["isRotated"]
        return data

    def op_accessToken_create(self, auth, options):
        if isinstance(auth, dict) and "adminKey" not in auth and "accessToken" in auth:
            account, _ = self._principal(auth, "accessToken:create")
        else:
            account = self._admin(auth)
        policies, expires, metadata = options.get("policies"), options.get("expiresAt"), options.get("metadata", {})
        problem = model.policies_problem(policies)
        if problem and "accept-backreference" in self.defects and "\\1" in json.dumps(policies):
            problem = None
        if problem and "refuse-nothing-in-payload" in self.defects and "payloadPatterns" in problem:
            problem = None
        if "python-re" in self.defects and isinstance(policies, list):
            patterns = [c.get("messagePattern") for c in policies if isinstance(c, dict)]
            without = [{k: v for k, v in c.items() if k != "messagePattern"} if isinstance(c, dict) else c
                       for c in policies]
            problem = model.policies_problem(without)
            for pattern in patterns:
                try:
                    re.compile(pattern if isinstance(pattern, str) else "")
                except re.error:
                    problem = "pattern"
        if "refuse-nested-quantifier" in self.defects and "+)+" in json.dumps(policies):
            problem = "nested quantifier"
        if problem:
            raise Refused("invalid_input", problem)
        if not isinstance(expires, str) or not _RFC3339.match(expires):
            raise Refused("invalid_input", "expiresAt")
        moment = datetime.fromisoformat(expires.replace("Z", "+00:00")).astimezone(timezone.utc)
        if moment <= _now():
            raise Refused("invalid_input", "expiresAt in the past")
        if not isinstance(metadata, dict) or not all(isinstance(v, (str, int, float, bool)) for v in metadata.values()):
            raise Refused("invalid_input", "metadata")
        stamp = _stamp(_now())
        value = "vt_act_" + os.urandom(32).hex()
        record = {"value": value, "id": str(uuid.uuid4()), "accountId": account["id"], "policies": policies,
                  "expiresAt": moment.replace(microsecond=moment.microsecond // 1000 * 1000),
                  "expiresAtText": expires if "no-expiry-normalise" in self.defects else _stamp(moment),
                  "metadata": metadata, "createdAt": stamp, "updatedAt": stamp, "revokedAt": None,
                  "epoch": self.accounts[account["id"]]["epoch"]}
        self.tokens[value] = record
        self.token_order.append(value)
        return self._token_data(record, reveal=True)

    def op_accessToken_list(self, auth, options):
        account, sets = self._principal(auth, "accessToken:list")
        if sets is not None and not all(model.has_component(p, "accessToken:list") for p in sets):
            raise Refused("auth_insufficient_scope")
        page, size = self._paging(options)
        records = [self.tokens[v] for v in self.token_order]
        if "list-all-accounts" not in self.defects:
            records = [r for r in records if r["accountId"] == account["id"]]
        shown = [r for r in records if self._shows(sets, "accessToken:list", r["metadata"])]
        data = self._page([self._token_data(r, reveal=False) for r in shown], page, size)
        if "token-count-wrong" in self.defects:
            data["totalRecords"] = len(records)
        return data

    def op_accessToken_revoke(self, auth, options):
        if isinstance(auth, dict) and "adminKey" not in auth and "accessToken" in auth:
            self._principal(auth, "accessToken:revoke")
        account = self._admin(auth)
        token_id = options.get("id")
        if not isinstance(token_id, str):
            raise Refused("invalid_input", "id")
        record = next((r for r in self.tokens.values() if r["id"] == token_id), None)
        if record is not None and record["accountId"] != account["id"] and "foreign-revoke-differs" in self.defects:
            raise Refused("not_found", "that token belongs to another account")
        if record is None or record["accountId"] != account["id"]:
            raise Refused("not_found", "no such token")
        if record["revokedAt"] is None or "revoke-moves" in self.defects:
            record["revokedAt"] = record["updatedAt"] = _stamp(_now())
            record["revokedMono"] = time.monotonic()
        return self._token_data(record, reveal="revoke-reveals-token" in self.defects)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_NEVER = {"pattern": "^no value matches this$"}


def _rewrite(policies: list, judge) -> list:
    """Transaction rules judged by a defective ``judge(field, rule)``: True drops the rule (held),
    False makes the field fail, None leaves the rule to the model."""
    changed = []
    for component in policies:
        patterns = component.get("payloadPatterns")
        if component.get("type") != "eoa:signTransaction" or not patterns:
            changed.append(component)
            continue
        rewritten = {}
        for name, rules in patterns.items():
            verdicts = [(rule, judge(name, rule)) for rule in rules]
            rewritten[name] = [rule for rule, verdict in verdicts if verdict is None] + (
                [_NEVER] if any(verdict is False for _, verdict in verdicts) else [])
        changed.append({**component, "payloadPatterns": rewritten})
    return changed


def _float_holds(rule: dict, value) -> bool:
    number, bound = float(model.quantity(value) or 0), float(rule["value"])
    return {"greaterThan": number > bound, "lessThan": number < bound, "equalTo": number == bound}[rule["op"]]


# ==== the tests ========================================================================================

TOKEN_CHECKS = [c.id for c in all_checks() if c.area == "tokens"]


def run_check(check_id: str, client: VaultClient, examples: int = 5) -> CheckFailed | None:
    check = next(c for c in all_checks() if c.id == check_id)
    try:
        check.func(Context("http://vault.test", client, options={"examples": examples, "derandomize": True}))
    except CheckFailed as failure:
        return failure
    except Observation:  # an INFO check reports what it saw: never a failure
        return None
    finally:
        client.close()
    return None


def test_every_tokens_check_is_registered():
    assert len(TOKEN_CHECKS) >= 20
    assert all(c.profile == "tokens" for c in all_checks() if c.area == "tokens")


@pytest.mark.parametrize("check_id", TOKEN_CHECKS)
def test_check_passes_a_correct_vault(check_id):
    failure = run_check(check_id, FakeVault().client())
    assert failure is None, f"{failure.message}: expected {failure.expected}, got {failure.actual}"


# (defect of the fake, the check that must notice it)
DEFECTS = [
    ("token-creates-token", "tokens/create-admin-only"),
    ("missing-isRotated", "tokens/create-data"),
    ("no-expiry-normalise", "tokens/create-data"),
    ("accept-backreference", "tokens/create-invalid-policies"),
    ("accept-backreference", "tokens/hostile-pattern"),
    ("refuse-nested-quantifier", "tokens/hostile-pattern"),
    ("list-reveals-token", "tokens/list"),
    ("list-reveals-token", "tokens/token-unguessable"),
    ("list-all-accounts", "tokens/list"),
    ("revoke-not-immediate", "tokens/revoke"),
    ("revoke-not-immediate", "tokens/authorization-matrix"),
    ("revoke-moves", "tokens/revoke"),
    ("revoke-lags", "tokens/revoke-immediate"),
    ("foreign-revoke-differs", "tokens/revoke-refusals"),
    ("token-count-wrong", "tokens/list-with-token"),
    ("ignore-expiry", "tokens/expired"),
    ("sat-no-exp-check", "tokens/expired"),
    ("sat-no-exp-check", "tokens/signed-token-faults"),
    ("rotation-keeps-tokens", "tokens/rotation-kills"),
    ("foreign-eoa-visible", "tokens/own-account-only"),
    ("token-gets-account", "tokens/outside-operations"),
    ("from-before-scope", "tokens/check-order"),
    ("no-sat-narrowing", "tokens/authorization-matrix"),
    ("no-sat-narrowing", "tokens/list-with-token"),
    ("sat-alg-none", "tokens/signed-token-faults"),
    ("sat-alg-none", "tokens/authorization-matrix"),
    ("ignore-allowlist", "tokens/policy-fields"),
    ("match-not-search", "tokens/policy-fields"),
    ("python-re", "tokens/policy-fields"),
    ("python-re", "tokens/create-invalid-policies"),
    ("hex-quantity-text", "tokens/policy-fields"),
    ("float-compare", "tokens/policy-fields"),
    ("to-null-matches-empty", "tokens/policy-fields"),
    ("structured-version-strict", "tokens/policy-fields"),
    ("create-allowed-ignored", "tokens/policy-fields"),
    ("read-filter-ignored", "tokens/read-filter"),
    ("missing-isRotated", "tokens/stateful"),
    ("surrogate-crash", "tokens/unpaired-surrogates"),
    ("revoke-reveals-token", "tokens/revoke"),
    ("error-echoes-credential", "tokens/invalid-token"),
]


@pytest.mark.parametrize("defect,check_id", DEFECTS)
def test_check_fails_a_vault_with_the_defect(defect, check_id):
    failure = run_check(check_id, FakeVault({defect}).client())
    assert failure is not None, f"{check_id} passed a Vault with defect {defect}"


@pytest.mark.parametrize("defect", ["ignore-allowlist", "float-compare"])
def test_property_check_finds_policy_defects(defect):
    failure = run_check("tokens/policy-property", FakeVault({defect}).client(), examples=150)
    assert failure is not None, f"tokens/policy-property passed a Vault with defect {defect}"


@pytest.mark.parametrize("defect", ["revoke-not-immediate", "rotation-keeps-tokens", "read-filter-ignored", "no-sat-narrowing"])
def test_stateful_check_finds_lifecycle_defects(defect):
    failure = run_check("tokens/stateful", FakeVault({defect}).client(), examples=25)
    assert failure is not None, f"tokens/stateful passed a Vault with defect {defect}"


def test_the_fake_itself_has_no_defect_by_default():
    assert FakeVault().defects == set()


def _reference_client(tmp_path) -> VaultClient:
    from reference.enclave import operations as reference_operations
    from reference.enclave.service import Enclave
    from reference.enclave.store import SqliteStore

    enclave = Enclave(kv=SqliteStore(tmp_path / "vault.sqlite"), master_key=os.urandom(32),
                      operations=reference_operations.default_operations())

    def route(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == "/api/v1/enclave":
            return httpx.Response(200, json={"publicKey": enclave.public_key.hex()})
        status, body = enclave.handle_envelope(request.content)
        return httpx.Response(status, content=body, headers={"content-type": "application/json"})

    client = VaultClient("http://vault.test")
    client._http.close()
    client._http = httpx.Client(base_url=client.base_url, transport=httpx.MockTransport(route))
    return client


@pytest.mark.parametrize("check_id", TOKEN_CHECKS)
def test_check_passes_the_reference(check_id, tmp_path):
    failure = run_check(check_id, _reference_client(tmp_path))
    assert failure is None, f"{failure.message}: expected {failure.expected}, got {failure.actual}"
