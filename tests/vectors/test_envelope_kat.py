"""Envelope known answers (vectors/envelope_kat.json, PROTOCOL.md section 2) against BOTH
implementations, in both directions: ``seal`` must reproduce the stored envelope hex exactly,
``open_envelope`` must recover the stored plaintext.

- request:  the client seals to the enclave's static key; the enclave opens with its secret;
- response: the enclave seals to the request's ephemeral key; the client opens with its secret.

The intermediates (shared secret, HKDF key) are also recomputed here with pyca/cryptography's
X25519, which the generator did not use, so a wrong stored value fails even if both
implementations shared a bug.
"""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

import harness.protocol.envelope as harness_envelope
import reference.enclave.envelope as reference_envelope
import vectors

from ._support import cases, h

IMPLS = [pytest.param(harness_envelope, id="harness"), pytest.param(reference_envelope, id="reference")]
KATS = cases("envelope_kat")


def _recipient_public(group: dict, test: dict, direction: str) -> bytes:
    if direction == "request":
        return h(group["enclavePublicKey"])
    return h(test["request"]["envelope"]["ephemeralPublicKey"])


def _recipient_secret(group: dict, test: dict, direction: str) -> bytes:
    if direction == "request":
        return h(group["enclaveSecret"])
    return h(test["request"]["ephemeralSecret"])


def test_the_file_covers_the_required_cases():
    data = vectors.load("envelope_kat")
    flags = {f for g in data["testGroups"] for t in g["tests"] for f in t["flags"]}
    assert {"EmptyPlaintext", "Unicode", "Large", "Operation"} <= flags
    sizes = [len(t["request"]["msg"]) // 2 for g in data["testGroups"] for t in g["tests"]]
    assert 0 in sizes and max(sizes) >= 64 * 1024
    operations = set()
    for group in data["testGroups"]:
        for test in group["tests"]:
            if "Operation" in test["flags"]:
                operations.add(json.loads(h(test["request"]["msg"]))["operation"])
    assert {"ping", "serviceAccount:create", "eoa:signTransaction", "accessToken:create",
            "solana:signTransaction"} <= operations


@pytest.mark.parametrize("direction", ["request", "response"])
@pytest.mark.parametrize(("group", "test"), KATS)
def test_stored_intermediates(group, test, direction):
    """sharedSecret, key and the public key follow from the inputs (pyca X25519 + HKDF)."""
    side = test[direction]
    secret = X25519PrivateKey.from_private_bytes(h(side["ephemeralSecret"]))
    assert secret.public_key().public_bytes_raw().hex() == side["envelope"]["ephemeralPublicKey"]
    assert side["envelope"]["nonce"] == side["nonce"]
    shared = secret.exchange(X25519PublicKey.from_public_bytes(_recipient_public(group, test, direction)))
    assert shared.hex() == side["sharedSecret"]
    key = HKDF(hashes.SHA256(), 32, None, h(group["hkdfInfo"])).derive(shared)
    assert key.hex() == side["key"]
    assert group["hkdfInfo"] == b"encryption".hex()
    assert len(side["envelope"]["ciphertext"]) == len(side["msg"]) + 32


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("direction", ["request", "response"])
@pytest.mark.parametrize(("group", "test"), KATS)
def test_seal_reproduces_the_envelope(impl, group, test, direction):
    side = test[direction]
    envelope = impl.seal(
        _recipient_public(group, test, direction),
        h(side["msg"]),
        ephemeral_secret=h(side["ephemeralSecret"]),
        nonce=h(side["nonce"]),
    )
    assert envelope.to_json() == side["envelope"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("direction", ["request", "response"])
@pytest.mark.parametrize(("group", "test"), KATS)
def test_open_recovers_the_plaintext(impl, group, test, direction):
    side = test[direction]
    envelope = impl.Envelope.from_json(side["envelope"])
    assert envelope == impl.Envelope(
        h(side["envelope"]["ephemeralPublicKey"]), h(side["nonce"]), h(side["envelope"]["ciphertext"])
    )
    assert impl.open_envelope(envelope, _recipient_secret(group, test, direction)) == h(side["msg"])


@pytest.mark.parametrize(("group", "test"), KATS)
def test_reference_parses_the_request_body(group, test):
    """What the client POSTs (its JSON.stringify output) parses to the same envelope."""
    body = json.dumps(test["request"]["envelope"], separators=(",", ":")).encode()
    envelope = reference_envelope.parse_body(body)
    assert envelope.to_json() == test["request"]["envelope"]
    assert reference_envelope.open_envelope(envelope, h(group["enclaveSecret"])) == h(test["request"]["msg"])
