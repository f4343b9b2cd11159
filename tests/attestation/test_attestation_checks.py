"""The attestation checks added for issue 8 (item 6), against the real reference and against the
same reference seen through a client that injects one fault: each check passes on the honest
answers and fails on the fault it exists for."""

from __future__ import annotations

import httpx
import pytest

from harness.protocol.client import VaultClient
from harness.suites import attestation
from harness.suites.registry import CheckFailed, Context

pytestmark = pytest.mark.server

CHECKS = {
    "attestation/public-key-member": attestation.public_key_member,
    "attestation/challenge-sizes": attestation.challenge_sizes,
    "attestation/same-challenge-distinct": attestation.same_challenge_distinct,
    "attestation/bad-nonce": attestation.bad_nonce,
}


class FaultyClient(VaultClient):
    """The reference's answers to the GET path, altered in one named way."""

    def __init__(self, url: str, fault: str | None):
        super().__init__(url)
        self.fault = fault
        self._cache: dict[str, httpx.Response] = {}

    def get(self, path: str, **kwargs) -> httpx.Response:
        nonce = (kwargs.get("params") or {}).get("nonce")
        if path == attestation.ATTESTATION_PATH and self.fault == "no-get-path":
            return httpx.Response(404, json={"error": "not_found"})  # every nonce "refused"
        if path == attestation.ATTESTATION_PATH and nonce is not None:
            if self.fault == "accepts-513" and len(nonce) > 1024:
                kwargs["params"] = {"nonce": nonce[:1024]}  # answers 200 where a refusal is due
            if self.fault == "cap-256" and len(nonce) > 512:
                return httpx.Response(400, json={"error": "invalid_input"})
            if self.fault == "cached" and nonce in self._cache:
                return self._cache[nonce]
        response = super().get(path, **kwargs)
        if path == attestation.ATTESTATION_PATH and response.status_code == 200:
            if self.fault == "wrong-public-key-member":
                body = dict(response.json(), publicKey="11" * 32)
                response = httpx.Response(200, json=body)
            if self.fault == "cached":
                self._cache.setdefault(nonce, response)
        return response


FAILS = {
    None: set(),
    "wrong-public-key-member": {"attestation/public-key-member"},
    "cap-256": {"attestation/challenge-sizes"},
    "accepts-513": {"attestation/challenge-sizes", "attestation/bad-nonce"},
    "cached": {"attestation/same-challenge-distinct"},
    "no-get-path": set(CHECKS),
}


@pytest.mark.parametrize("fault", list(FAILS), ids=[str(f) for f in FAILS])
def test_each_check_fails_on_its_fault_and_only_there(reference_server, fault):
    client = FaultyClient(reference_server.url, fault)
    try:
        root = client.get("/api/v1/enclave/attestation/dev-root").json()["rootPem"].encode()
        ctx = Context(reference_server.url, client, {"attestation_roots": [root], "allow_debug": True})
        failed = {}
        for name, check in CHECKS.items():
            try:
                check(ctx)
            except CheckFailed as error:
                failed[name] = str(error)
    finally:
        client.close()
    assert set(failed) == FAILS[fault], failed
