"""A Locust user that speaks the Vault's envelope (spec 3) and mixes the Vault's operations.

Run by tests/load/test_load.py as a subprocess (gevent monkey-patches; it must never share the
pytest process). Standalone, with the project installed (it imports the harness's envelope),
on one machine or spread over several with Locust's master/worker mode:

    locust -f tests/load/locustfile.py --headless -u 32 -r 32 -t 60s --host http://vault:8080
    locust -f tests/load/locustfile.py --master --headless -u 64 -r 64 -t 60s --host http://vault:8080
    locust -f tests/load/locustfile.py --worker --master-host <master>      # on each load machine

Every acknowledged write (an account created, a rotation, an EOA, an access token) is appended
as one JSON line to the ledger named by ``VAULT_LOAD_LEDGER`` (one file per process: ``.<pid>``
is appended), so a run can be read back afterwards (tests/load/readback.py).
``VAULT_LOAD_INSTANCES`` spreads the requests over several instances of one Vault. A reply that
is not a success, or a signature that does not recover to its EOA, is a Locust failure.
"""

from __future__ import annotations

import json
import os
import random
import threading
from datetime import datetime, timedelta, timezone

from eth_account import Account
from eth_account.messages import encode_defunct
from locust import FastHttpUser, between, events, task

from harness.protocol import envelope

ENVELOPE_PATH = "/api/v1/enclave"
# Signatures recovered with eth-account: one in this many (recovery costs the load generator CPU).
VERIFY_ONE_IN = int(os.environ.get("VAULT_LOAD_VERIFY_ONE_IN", "4"))
TOKEN_POLICIES = [{"type": "eoa:signMessage"}]
# Several instances of one Vault (comma-separated base URLs): each request goes to any of them, so
# a write acknowledged by one is read, rotated and signed with through the others. Default: --host.
INSTANCES = [url.rstrip("/") for url in os.environ.get("VAULT_LOAD_INSTANCES", "").split(",") if url]


class Ledger:
    """Acknowledged writes, one JSON object a line, flushed at once (a killed run keeps its lines)."""

    def __init__(self, path: str | None):
        self._path, self._file, self._pid = path, None, None
        self._lock = threading.Lock()

    def write(self, kind: str, **fields) -> None:
        if self._path is None:
            return
        line = json.dumps({"kind": kind, **fields}, separators=(",", ":"))
        with self._lock:
            if self._pid != os.getpid():  # opened here, not at import: --processes forks workers after it
                self._pid = os.getpid()
                self._file = open(f"{self._path}.{self._pid}", "a", buffering=1)
            self._file.write(line + "\n")
            self._file.flush()


LEDGER = Ledger(os.environ.get("VAULT_LOAD_LEDGER"))


class OperationFailed(Exception):
    pass


class VaultUser(FastHttpUser):
    wait_time = between(0, 0.01)

    def on_start(self):
        answer = self.client.get(ENVELOPE_PATH, name="GET /api/v1/enclave")
        self.enclave_public_key = bytes.fromhex(answer.json()["publicKey"])
        self.accounts: list[dict] = []  # each: id, adminKey, rotationCode, eoas, tokens (owned by this user only)
        self.create_account()

    # ---- the envelope ------------------------------------------------------------------------
    def call(self, operation: str, *, auth: dict | None = None, options: dict | None = None,
             name: str | None = None):
        """One sealed request; its decrypted ``data``, or None after reporting a failure."""
        request = {"operation": operation}
        if auth is not None:
            request["auth"] = auth
        if options is not None:
            request["options"] = options
        secret = os.urandom(envelope.KEY_BYTES)
        sealed = envelope.seal(self.enclave_public_key, json.dumps(request).encode(),
                               ephemeral_secret=secret, nonce=os.urandom(envelope.NONCE_BYTES))
        target = random.choice(INSTANCES) + ENVELOPE_PATH if INSTANCES else ENVELOPE_PATH
        with self.client.post(target, data=sealed.to_bytes(), name=name or operation, catch_response=True,
                              headers={"content-type": "application/json"}) as response:
            try:
                if response.status_code != 200:
                    raise OperationFailed(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                reply = json.loads(envelope.open_envelope(envelope.Envelope.from_json(response.json()), secret))
                if reply.get("success") is not True:
                    raise OperationFailed(f"refused: {reply.get('error')}")
            except (OperationFailed, envelope.EnvelopeError, ValueError, TypeError, KeyError) as error:
                response.failure(f"{operation}: {error}")
                return None
            return reply["data"]

    def fail(self, operation: str, message: str) -> None:
        events.request.fire(request_type="CHECK", name=operation, response_time=0, response_length=0,
                            exception=OperationFailed(message), context={})

    def some_account(self) -> dict:
        if not self.accounts:  # the first create failed (reported already): try again
            self.create_account()
        return random.choice(self.accounts) if self.accounts else {"adminKey": "", "rotationCode": "", "eoas": []}

    # ---- the mix -----------------------------------------------------------------------------
    @task(2)
    def create_account(self):
        data = self.call("serviceAccount:create", options={"metadata": {"load": "locust"}})
        if data is not None:
            account = {"id": data["id"], "adminKey": data["adminKey"], "rotationCode": data["rotationCode"],
                       "eoas": []}
            self.accounts.append(account)
            LEDGER.write("account", id=account["id"], adminKey=account["adminKey"])

    @task(4)
    def get_account(self):
        account = self.some_account()
        data = self.call("serviceAccount:get", auth={"adminKey": account["adminKey"]})
        if data is not None and data.get("id") != account["id"]:
            self.fail("serviceAccount:get", f"answered account {data.get('id')}, expected {account['id']}")

    @task(1)
    def rotate(self):
        account = self.some_account()
        data = self.call("serviceAccount:rotate", auth={"rotationCode": account["rotationCode"]})
        if data is not None:
            LEDGER.write("rotate", id=account["id"], old=account["adminKey"], new=data["newAdminKey"])
            account["adminKey"], account["rotationCode"] = data["newAdminKey"], data["newRotationCode"]

    @task(2)
    def create_eoa(self):
        account = self.some_account()
        data = self.call("eoa:create", auth={"adminKey": account["adminKey"]}, options={"metadata": {}})
        if data is not None:
            account["eoas"].append(data["address"])
            LEDGER.write("eoa", id=account["id"], address=data["address"])

    @task(4)
    def sign_message(self):
        account = self.some_account()
        if account["eoas"]:
            self.sign_with(account, {"adminKey": account["adminKey"]}, "eoa:signMessage")

    def sign_with(self, account: dict, auth: dict, name: str) -> None:
        address = random.choice(account["eoas"])
        message = f"load {random.getrandbits(64):016x}"
        data = self.call("eoa:signMessage", auth=auth, options={"from": address, "message": message}, name=name)
        if data is not None and random.randrange(VERIFY_ONE_IN) == 0:
            signature = bytes.fromhex(data["signature"].removeprefix("0x"))
            recovered = Account.recover_message(encode_defunct(text=message), signature=signature)
            if recovered.lower() != address.lower():
                self.fail(name, f"signature recovers to {recovered}, not {address}")

    @task(1)
    def access_token(self):
        """accessToken:create, then the token signs with one of the account's EOAs."""
        account = self.some_account()
        if not account["eoas"]:
            return
        expires = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        data = self.call("accessToken:create", auth={"adminKey": account["adminKey"]},
                         options={"policies": TOKEN_POLICIES, "expiresAt": expires})
        if data is not None:
            LEDGER.write("token", id=account["id"], issuedWith=account["adminKey"], token=data["accessToken"])
            self.sign_with(account, {"accessToken": data["accessToken"]}, "eoa:signMessage (access token)")

    @task(1)
    def ping(self):
        message = f"{random.getrandbits(32):08x}"
        data = self.call("ping", options={"message": message})
        if data is not None and data.get("pong") != message:
            self.fail("ping", f"pong {data.get('pong')!r}, expected {message!r}")
