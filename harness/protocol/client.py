"""A Vault client for the harness: speaks the envelope over HTTP and keeps every secret it used,
so checks can reason about forward secrecy, tampering and freshness."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx

from . import envelope

ENVELOPE_PATH = "/api/v1/enclave"


class ProtocolViolation(Exception):
    """The target answered something the protocol does not allow (not JSON, wrong shape...)."""


@dataclass
class Exchange:
    """One encrypted round trip, with everything needed to re-examine it."""

    request_plaintext: bytes
    client_secret: bytes
    request: envelope.Envelope
    status: int
    raw_response: bytes
    response: envelope.Envelope | None = None
    reply: dict | None = None  # decrypted JSON
    unencrypted_error: dict | None = None

    @property
    def ok(self) -> bool:
        return bool(self.reply and self.reply.get("success") is True)

    @property
    def data(self) -> Any:
        return (self.reply or {}).get("data")

    @property
    def error_code(self) -> str | None:
        error = (self.reply or {}).get("error") or {}
        return error.get("code")


@dataclass
class VaultClient:
    base_url: str
    timeout: float = 10.0
    random_bytes: Callable[[int], bytes] = os.urandom
    _http: httpx.Client = field(init=False, repr=False)
    _public_key: bytes | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.base_url = self.base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=self.timeout)

    def close(self) -> None:
        self._http.close()

    # ---- plain HTTP ------------------------------------------------------------------------
    def get(self, path: str, **kwargs) -> httpx.Response:
        return self._http.get(path, **kwargs)

    def post_raw(self, body: bytes, path: str = ENVELOPE_PATH, headers: dict | None = None) -> httpx.Response:
        return self._http.post(path, content=body, headers={"content-type": "application/json", **(headers or {})})

    @property
    def enclave_public_key(self) -> bytes:
        if self._public_key is None:
            response = self.get(ENVELOPE_PATH)
            if response.status_code != 200:
                raise ProtocolViolation(f"GET {ENVELOPE_PATH} answered {response.status_code}")
            try:
                self._public_key = bytes.fromhex(response.json()["publicKey"])
            except (ValueError, KeyError, TypeError) as error:
                raise ProtocolViolation(f"GET {ENVELOPE_PATH}: no hex publicKey ({error})") from None
            if len(self._public_key) != envelope.KEY_BYTES:
                raise ProtocolViolation("publicKey is not 32 bytes")
        return self._public_key

    # ---- the envelope ----------------------------------------------------------------------
    def seal(self, plaintext: bytes, *, client_secret: bytes | None = None, nonce: bytes | None = None):
        secret = client_secret or self.random_bytes(envelope.KEY_BYTES)
        sealed = envelope.seal(
            self.enclave_public_key,
            plaintext,
            ephemeral_secret=secret,
            nonce=nonce or self.random_bytes(envelope.NONCE_BYTES),
        )
        return secret, sealed

    def exchange(self, plaintext: bytes, *, path: str = ENVELOPE_PATH, client_secret: bytes | None = None) -> Exchange:
        secret, sealed = self.seal(plaintext, client_secret=client_secret)
        response = self.post_raw(sealed.to_bytes(), path=path)
        return self.read_reply(plaintext, secret, sealed, response)

    def read_reply(self, plaintext: bytes, secret: bytes, sealed: envelope.Envelope, response: httpx.Response) -> Exchange:
        exchange = Exchange(plaintext, secret, sealed, response.status_code, response.content)
        try:
            body = json.loads(response.content)
        except ValueError:
            raise ProtocolViolation(f"answer is not JSON (HTTP {response.status_code})") from None
        if isinstance(body, dict) and "error" in body and "ciphertext" not in body:
            exchange.unencrypted_error = body
            return exchange
        try:
            exchange.response = envelope.Envelope.from_json(body)
            opened = envelope.open_envelope(exchange.response, secret)
            exchange.reply = json.loads(opened)
        except envelope.EnvelopeError as error:
            raise ProtocolViolation(f"response envelope rejected: {error}") from None
        except ValueError:
            raise ProtocolViolation("decrypted response is not JSON") from None
        return exchange

    def call(self, operation: str, *, options: dict | None = None, auth: dict | None = None, **kwargs) -> Exchange:
        request: dict[str, Any] = {"operation": operation}
        if auth is not None:
            request["auth"] = auth
        if options is not None:
            request["options"] = options
        return self.exchange(json.dumps(request).encode(), **kwargs)
