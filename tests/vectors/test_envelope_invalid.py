"""Request bodies a Vault must refuse (vectors/envelope_invalid.json, PROTOCOL.md sections 2, 4).

Reference: every case goes through ``parse_body`` (stages body and fields must fail there) and,
for stage open, ``open_envelope`` with the enclave secret of envelope_kat.json. The error must
carry the vector's ``type`` and ``status``, and its unencrypted JSON form must say the same.
Harness: ``Envelope.from_json(json.loads(body))`` for stage fields, plus ``open_envelope`` for
stage open (stage body is about bytes and JSON text, which the harness leaves to its JSON parser).

Consumer contract (Wycheproof): valid must be accepted, invalid refused with the stated type;
acceptable may go either way, but a refusal must use the stated type, and an acceptance must
yield exactly envelope_kat.json tcId 1's request (the flag's note says why the case exists).
"""

from __future__ import annotations

import json

import pytest

import harness.protocol.envelope as harness_envelope
import reference.enclave.envelope as reference_envelope
import reference.enclave.errors as reference_errors
import vectors

from ._support import cases, h

CASES = cases("envelope_invalid")
KAT = vectors.load("envelope_kat")["testGroups"][0]
ENCLAVE_SECRET = h(KAT["enclaveSecret"])
CONTROL_REQUEST = KAT["tests"][0]["request"]

REQUIRED_FLAGS = {
    "NotJson", "NotUtf8", "DuplicateKey", "PayloadTooLarge", "NotAnObject", "MissingField", "WrongType",
    "UppercaseHex", "HexPrefix", "OddLengthHex", "NonHexCharacter", "WrongLength", "LowOrderPublicKey",
    "ModifiedCiphertext",
}


def body_bytes(test: dict) -> bytes:
    body = test["body"].encode("utf-8") if "body" in test else h(test["bodyHex"])
    if "bodySize" in test:
        assert test["bodySize"] >= len(body)
        body += b" " * (test["bodySize"] - len(body))
    return body


def test_the_file_covers_the_required_cases():
    data = vectors.load("envelope_invalid")
    flags = {f for g in data["testGroups"] for t in g["tests"] for f in t["flags"]}
    assert REQUIRED_FLAGS <= flags
    stages = {g["stage"]: g for g in data["testGroups"]}
    assert set(stages) == {"body", "fields", "open"}
    # The open stage is made for the KAT enclave key: the header says which.
    assert stages["open"]["enclavePublicKey"] == KAT["enclavePublicKey"]
    assert reference_envelope.public_key(ENCLAVE_SECRET).hex() == KAT["enclavePublicKey"]
    low_order = [t for t in stages["open"]["tests"] if "LowOrderPublicKey" in t["flags"]]
    assert len(low_order) >= 14  # libsodium's 7 points, each with and without bit 255


def test_status_follows_the_type():
    for group in vectors.load("envelope_invalid")["testGroups"]:
        for test in group["tests"]:
            if "type" in test:
                assert test["status"] == (413 if test["type"] == "payload_too_large" else 400), test["tcId"]


def _reference_outcome(group: dict, body: bytes):
    """Return the opened plaintext, or the EnvelopeError with the stage where it was raised."""
    try:
        envelope = reference_envelope.parse_body(body)
    except reference_errors.EnvelopeError as error:
        return "parse", error
    if group["stage"] != "open":
        return "parsed", envelope
    try:
        return "opened", reference_envelope.open_envelope(envelope, ENCLAVE_SECRET)
    except reference_errors.EnvelopeError as error:
        return "open", error


def _assert_accepted_as_control(stage: str, value, group: dict) -> None:
    if stage == "parsed":
        assert value.to_json() == CONTROL_REQUEST["envelope"]
    else:
        assert stage == "opened"
        assert value == h(CONTROL_REQUEST["msg"])


@pytest.mark.parametrize(("group", "test"), CASES)
def test_reference(group, test):
    stage, value = _reference_outcome(group, body_bytes(test))
    refused = isinstance(value, reference_errors.EnvelopeError)
    if test["result"] == "valid" or (test["result"] == "acceptable" and not refused):
        assert not refused, f"refused with {value.code.value}: {value.message}"
        _assert_accepted_as_control(stage, value, group)
        return
    assert refused, f"accepted a body that must be refused as {test['type']}"
    assert (value.code.value, value.status) == (test["type"], test["status"])
    assert value.to_json()["error"]["type"] == test["type"]
    assert value.to_json()["error"]["status"] == test["status"]
    # Refused before decryption for the body and fields stages, by the key for the open stage.
    assert stage == ("open" if group["stage"] == "open" else "parse")


HARNESS_CASES = [p for p in CASES if p.values[0]["stage"] in ("fields", "open")]


@pytest.mark.parametrize(("group", "test"), HARNESS_CASES)
def test_harness(group, test):
    obj = json.loads(body_bytes(test).decode("utf-8"))
    try:
        envelope = harness_envelope.Envelope.from_json(obj)
        outcome = harness_envelope.open_envelope(envelope, ENCLAVE_SECRET) if group["stage"] == "open" else envelope
        error = None
    except harness_envelope.EnvelopeError as exc:
        error = exc
    if test["result"] == "valid" or (test["result"] == "acceptable" and error is None):
        assert error is None, f"refused with {error}"
        if group["stage"] == "open":
            assert outcome == h(CONTROL_REQUEST["msg"])
        else:
            assert outcome.to_json() == CONTROL_REQUEST["envelope"]
        return
    assert error is not None, f"accepted a body that must be refused as {test['type']}"
    assert error.code == test["type"]
