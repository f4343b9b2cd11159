"""A burst of concurrent writes that keeps a ledger of what the Vault acknowledged.

Threads create accounts, rotate them and create EOAs until stopped, and log every write whose
success reply arrived (tests/load/readback.py reads that ledger back). A rotation sent but never
answered, or refused with an error, leaves its account ``unsure``: the Vault may or may not have
made it (a database lost at COMMIT cannot tell). Every answer is
sorted: a success, a clean encrypted error (spec 4.2, with its code), a transport failure (the
server is gone), or anything else (a 500, an unencrypted error, an undecryptable reply), which
is what a fault must never produce.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field

import httpx

from harness.protocol.client import ProtocolViolation, VaultClient


@dataclass
class Burst:
    url: str
    threads: int = 12
    entries: list[dict] = field(default_factory=list)
    answers: Counter = field(default_factory=Counter)  # "ok", "error:<code>", "transport", "unclean"
    unclean: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    acknowledged: int = 0  # writes whose success reply arrived ("unsure" entries are not)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def log(self, kind: str, **fields) -> None:
        with self._lock:
            self.entries.append({"kind": kind, **fields})
        if kind != "unsure":
            with self._changed:
                self.acknowledged += 1
                self._changed.notify_all()

    def count(self, what: str, detail: str = "") -> None:
        with self._lock:
            self.answers[what] += 1
            if what == "unclean":
                self.unclean.append(detail)

    def _call(self, client: VaultClient, operation: str, **kwargs):
        """The data of a success; None after a clean error; raises on a transport failure."""
        try:
            answer = client.call(operation, **kwargs)
        except (httpx.TransportError, ProtocolViolation) as error:
            if isinstance(error, ProtocolViolation):
                self.count("unclean", f"{operation}: {error}")
                return None
            raise
        if answer.ok:
            self.count("ok")
            return answer.data
        if answer.reply is not None and answer.status == 200:
            self.count(f"error:{answer.error_code}")
        else:
            self.count("unclean", f"{operation}: HTTP {answer.status} {answer.raw_response[:300]!r}")
        return None

    def _work(self, seed: int) -> None:
        rng = random.Random(seed)
        client = VaultClient(self.url, timeout=15)
        mine: list[dict] = []
        try:
            while not self._stop.is_set():
                try:
                    choice = rng.random()
                    if not mine or choice < 0.4:
                        data = self._call(client, "serviceAccount:create", options={"metadata": {}})
                        if data:
                            mine.append({"id": data["id"], "adminKey": data["adminKey"],
                                         "rotationCode": data["rotationCode"]})
                            self.log("account", id=data["id"], adminKey=data["adminKey"])
                    elif choice < 0.7:
                        account = rng.choice(mine)
                        data = self._call(client, "eoa:create", auth={"adminKey": account["adminKey"]},
                                          options={"metadata": {}})
                        if data:
                            self.log("eoa", id=account["id"], address=data["address"])
                    else:
                        account = rng.choice(mine)
                        try:
                            data = self._call(client, "serviceAccount:rotate",
                                              auth={"rotationCode": account["rotationCode"]})
                        except httpx.TransportError:
                            self.log("unsure", id=account["id"])
                            mine.remove(account)
                            raise
                        if data:
                            self.log("rotate", id=account["id"], old=account["adminKey"], new=data["newAdminKey"])
                            account["adminKey"], account["rotationCode"] = data["newAdminKey"], data["newRotationCode"]
                        else:
                            # refused (e.g. the database went away at COMMIT): it may still have been made
                            self.log("unsure", id=account["id"])
                            mine.remove(account)
                except httpx.TransportError:
                    self.count("transport")
                    self._stop.wait(0.05)
        finally:
            client.close()

    def start(self) -> "Burst":
        for n in range(self.threads):
            worker = threading.Thread(target=self._work, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def wait_for_acknowledged(self, count: int, timeout: float = 30) -> None:
        """Wait until ``count`` more writes are acknowledged than when called (counting from the
        call, so acknowledgements from before a fault never stand in for ones after it)."""
        with self._changed:
            target = self.acknowledged + count
            if not self._changed.wait_for(lambda: self.acknowledged >= target, timeout=timeout):
                raise AssertionError(f"the burst got fewer than {count} more writes acknowledged "
                                     f"within {timeout} s: {self.answers}")

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(30)


class DrainedOutput:
    """A server process's output. ``ServerProcess`` (tests/conftest.py) drains it as it comes:
    undrained, a server that logs more than the pipe holds (64 KiB: a few hundred store errors)
    blocks in its logger and answers nothing."""

    def __init__(self, server):
        self._server = server

    def text(self) -> str:
        """Everything the process wrote; call after it exited."""
        return self._server.output()
