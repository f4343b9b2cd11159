"""The enclave-side envelope, as pure functions (spec §3)."""

import dataclasses
import json
import os

import pytest

from reference.enclave import envelope
from reference.enclave.errors import EnvelopeCode, EnvelopeError

STATIC_SECRET = bytes(range(32))
STATIC_PUBLIC = envelope.public_key(STATIC_SECRET)


def sealed_request(plaintext=b'{"operation":"ping"}', secret=None, nonce=None):
    return envelope.seal(STATIC_PUBLIC, plaintext, ephemeral_secret=secret or os.urandom(32), nonce=nonce or os.urandom(24))


def test_request_opens_with_static_secret():
    request = sealed_request(b"hello")
    assert envelope.open_envelope(envelope.parse_body(request.to_bytes()), STATIC_SECRET) == b"hello"


def test_response_opens_with_client_ephemeral_secret_only():
    client_secret = os.urandom(32)
    reply = envelope.seal_response(envelope.public_key(client_secret), b"reply", os.urandom)
    assert envelope.open_envelope(reply, client_secret) == b"reply"
    with pytest.raises(EnvelopeError) as error:
        envelope.open_envelope(reply, os.urandom(32))
    assert error.value.code is EnvelopeCode.DECRYPTION_FAILED


def test_response_takes_fresh_key_and_nonce_from_randomness():
    draws = []

    def recording_random(n):
        draws.append(n)
        return os.urandom(n)

    client_public = envelope.public_key(os.urandom(32))
    first = envelope.seal_response(client_public, b"x", recording_random)
    second = envelope.seal_response(client_public, b"x", recording_random)
    assert draws == [32, 24, 32, 24]
    assert first.ephemeral_public_key != second.ephemeral_public_key
    assert first.nonce != second.nonce


@pytest.mark.parametrize("body, code", [
    (b"{", EnvelopeCode.INVALID_JSON),
    (b"\xff", EnvelopeCode.INVALID_JSON),
    (b"[]", EnvelopeCode.INVALID_JSON),
    (b'{"nonce":"00"}', EnvelopeCode.INVALID_ENVELOPE),
    (json.dumps({"ephemeralPublicKey": "1" * 63, "nonce": "00" * 24, "ciphertext": "00" * 16}).encode(), EnvelopeCode.INVALID_HEX),
    (json.dumps({"ephemeralPublicKey": " 1" * 32, "nonce": "00" * 24, "ciphertext": "00" * 16}).encode(), EnvelopeCode.INVALID_HEX),
    (json.dumps({"ephemeralPublicKey": "11" * 32, "nonce": "00" * 23, "ciphertext": "00" * 16}).encode(), EnvelopeCode.INVALID_LENGTH),
    (json.dumps({"ephemeralPublicKey": "11" * 32, "nonce": "00" * 24, "ciphertext": "00" * 15}).encode(), EnvelopeCode.INVALID_LENGTH),
    (b'{"a":1,"a":1}', EnvelopeCode.INVALID_JSON),
    (b" " * (envelope.MAX_BODY_BYTES + 1), EnvelopeCode.PAYLOAD_TOO_LARGE),
])
def test_parse_body_rejects_with_typed_error(body, code):
    with pytest.raises(EnvelopeError) as error:
        envelope.parse_body(body)
    assert error.value.code is code
    assert 400 <= error.value.status < 500


def test_low_order_key_is_refused():
    request = sealed_request()
    zero_key = envelope.Envelope(bytes(32), request.nonce, request.ciphertext)
    with pytest.raises(EnvelopeError) as error:
        envelope.open_envelope(zero_key, STATIC_SECRET)
    assert error.value.code is EnvelopeCode.LOW_ORDER_PUBLIC_KEY


@pytest.mark.parametrize("field", ["ephemeral_public_key", "nonce", "ciphertext"])
def test_any_tampered_field_fails_to_open(field):
    request = sealed_request()
    value = bytearray(getattr(request, field))
    value[0] ^= 1
    with pytest.raises(EnvelopeError):
        envelope.open_envelope(dataclasses.replace(request, **{field: bytes(value)}), STATIC_SECRET)


def test_uppercase_hex_is_accepted():
    request = sealed_request(b"upper")
    body = {k: v.upper() for k, v in request.to_json().items()}
    assert envelope.open_envelope(envelope.parse_body(json.dumps(body).encode()), STATIC_SECRET) == b"upper"
