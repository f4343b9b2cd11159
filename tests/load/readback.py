"""Reading back a ledger of acknowledged writes against a live Vault.

A ledger is JSON lines (tests/load/locustfile.py writes them): ``account`` (id, adminKey),
``rotate`` (id, old, new), ``eoa`` (id, address), ``token`` (id, issuedWith, token), ``unsure`` (id). The Vault
must show every one of them: each account authenticates with its latest admin key and refuses
every key rotated away (spec 6.4), each EOA signs for its account (the signature recovers with
eth-account), and a token is live exactly while its account has not rotated since it was issued
(13.4). Rotations of one account are ordered by their chain old -> new, not by line order, since
several processes may write ledgers.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account
from eth_account.messages import encode_defunct

from harness.protocol.client import VaultClient


@dataclass
class AccountHistory:
    id: str
    first_key: str
    rotations: dict[str, str] = field(default_factory=dict)  # old admin key -> new
    eoas: list[str] = field(default_factory=list)
    tokens: list[tuple[str, str]] = field(default_factory=list)  # (admin key at issue, token)

    def keys(self) -> list[str]:
        """Admin keys in the order they were valid, following the rotation chain."""
        chain = [self.first_key]
        while chain[-1] in self.rotations:
            chain.append(self.rotations[chain[-1]])
        if len(chain) != len(self.rotations) + 1:
            raise AssertionError(f"account {self.id}: rotations do not form one chain from its first key")
        return chain


def read_ledger(paths) -> dict[str, AccountHistory]:
    return read_entries(json.loads(line) for path in paths for line in Path(path).read_text().splitlines()
                        if line.strip())


def read_entries(entries) -> dict[str, AccountHistory]:
    """Accounts and what was acknowledged on them. ``unsure`` (a rotation sent but never answered,
    e.g. when the server was killed) drops the account: its latest admin key is unknown."""
    accounts: dict[str, AccountHistory] = {}
    pending, unsure = [], set()
    for entry in entries:
        if entry["kind"] == "account":
            accounts[entry["id"]] = AccountHistory(entry["id"], entry["adminKey"])
        elif entry["kind"] == "unsure":
            unsure.add(entry["id"])
        else:
            pending.append(entry)
    for entry in pending:
        history = accounts[entry["id"]]
        if entry["kind"] == "rotate":
            history.rotations[entry["old"]] = entry["new"]
        elif entry["kind"] == "eoa":
            history.eoas.append(entry["address"])
        elif entry["kind"] == "token":
            history.tokens.append((entry["issuedWith"], entry["token"]))
    return {ident: history for ident, history in accounts.items() if ident not in unsure}


@dataclass
class ReadBack:
    accounts: int = 0
    latest_keys: int = 0
    refused_old_keys: int = 0
    eoas: int = 0
    live_tokens: int = 0
    dead_tokens: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def writes_checked(self) -> int:
        return self.latest_keys + self.refused_old_keys + self.eoas + self.live_tokens + self.dead_tokens

    def __str__(self) -> str:
        return (f"{self.accounts} accounts: {self.latest_keys} latest admin keys accepted, "
                f"{self.refused_old_keys} rotated-away keys refused, {self.eoas} EOAs signed, "
                f"{self.live_tokens} live tokens accepted, {self.dead_tokens} rotated-away tokens refused")


class _Clients:
    """One client per thread and instance: the enclave's key is fetched once, connections kept."""

    def __init__(self):
        self._local, self._all, self._lock = threading.local(), [], threading.Lock()

    def get(self, url: str) -> VaultClient:
        mine = self._local.__dict__.setdefault("by_url", {})
        if url not in mine:
            mine[url] = VaultClient(url, timeout=30)
            with self._lock:
                self._all.append(mine[url])
        return mine[url]

    def close(self) -> None:
        for client in self._all:
            client.close()


def _check_account(client: VaultClient, history: AccountHistory) -> ReadBack:
    result = ReadBack()
    client.answers.clear()  # nothing here judges the record; keep it from growing
    try:
        keys = history.keys()
        latest, old = keys[-1], keys[:-1]
        got = client.call("serviceAccount:get", auth={"adminKey": latest})
        if not (got.ok and got.data["id"] == history.id):
            result.problems.append(f"account {history.id}: latest admin key refused: {got.reply}")
        else:
            result.latest_keys += 1
        for key in old:
            refused = client.call("serviceAccount:get", auth={"adminKey": key})
            if refused.error_code != "auth_invalid_admin_key":
                result.problems.append(f"account {history.id}: a rotated-away key answered {refused.reply}")
            else:
                result.refused_old_keys += 1
        for address in history.eoas:
            message = f"read back {address}"
            signed = client.call("eoa:signMessage", auth={"adminKey": latest},
                                 options={"from": address, "message": message})
            recovered = None
            if signed.ok:
                recovered = Account.recover_message(encode_defunct(text=message),
                                                    signature=bytes.fromhex(signed.data["signature"]))
            if recovered is None or recovered.lower() != address.lower():
                result.problems.append(f"account {history.id}: EOA {address} did not sign: {signed.reply}")
            else:
                result.eoas += 1
        for issued_with, token in history.tokens:
            live = issued_with == latest
            used = client.call("eoa:list", auth={"accessToken": token}) if not history.eoas else \
                client.call("eoa:signMessage", auth={"accessToken": token},
                            options={"from": history.eoas[0], "message": "token read back"})
            if live and used.ok:
                result.live_tokens += 1
            elif not live and used.error_code == "auth_invalid_access_token":
                result.dead_tokens += 1
            else:
                result.problems.append(f"account {history.id}: token issued with "
                                       f"{'the latest' if live else 'an old'} key answered {used.reply}")
        result.accounts += 1
    except AssertionError as error:
        result.problems.append(str(error))
    return result


def read_back(urls: list[str], accounts: dict[str, AccountHistory], workers: int = 8) -> ReadBack:
    """Check every account; accounts are spread over ``urls`` (several instances of one Vault)."""
    total, clients = ReadBack(), _Clients()
    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(lambda pair: _check_account(clients.get(urls[pair[0] % len(urls)]), pair[1]),
                              enumerate(accounts.values())))
    clients.close()
    for part in parts:
        for name in ("accounts", "latest_keys", "refused_old_keys", "eoas", "live_tokens", "dead_tokens"):
            setattr(total, name, getattr(total, name) + getattr(part, name))
        total.problems += part.problems
    return total
