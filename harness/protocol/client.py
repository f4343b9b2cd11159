"""A Vault client for the harness: speaks the envelope over HTTP and keeps every secret it used,
so checks can reason about forward secrecy, tampering and freshness.

Every HTTP answer the client receives, whichever check asked and whatever its status, is kept
in :attr:`VaultClient.answers` (an :class:`Answer` each, with the request that got it). Checks
tagged ``final`` judge that record once all others have run: freshness of every reply key and
nonce (spec §3.4), exact shapes (§3.1, §4.1, §4.2) and the contents of every error (§4.4)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx

from . import envelope

ENVELOPE_PATH = "/api/v1/enclave"
# Request bodies are kept up to this size for the record (enough for every hex member of a
# well-formed envelope; the 16 MiB probes need not be kept whole).
RECORD_BODY_BYTES = 1 << 16


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
class Answer:
    """One HTTP answer the harness received, with what it sent; filled in further when opened."""

    method: str
    path: str
    request_body: bytes  # at most RECORD_BODY_BYTES
    status: int
    content_type: str
    body: bytes
    json: Any = None  # the parsed body, when it is JSON
    request_envelope: envelope.Envelope | None = None  # when the request was a well-formed envelope
    response_envelope: envelope.Envelope | None = None  # when the answer was a well-formed envelope
    # Set by read_reply once the harness opened the answer with the request's secret:
    client_secret: bytes | None = None
    request_plaintext: bytes | None = None
    reply: Any = None

    @property
    def unencrypted_error(self) -> dict | None:
        if isinstance(self.json, dict) and "error" in self.json and "ciphertext" not in self.json:
            return self.json
        return None


def _lenient_envelope(data: bytes) -> envelope.Envelope | None:
    try:
        return envelope.Envelope.from_json(json.loads(data))
    except (ValueError, envelope.EnvelopeError, RecursionError):
        return None


@dataclass
class VaultClient:
    base_url: str
    timeout: float = 10.0
    random_bytes: Callable[[int], bytes] = os.urandom
    # What a real deployment needs between the harness and the Vault: ``verify`` (a CA bundle path,
    # or False for --insecure), ``headers`` sent with every request, ``proxy``. Passed to httpx.
    http_options: dict = field(default_factory=dict)
    _http: httpx.Client = field(init=False, repr=False)
    _public_key: bytes | None = field(default=None, init=False, repr=False)
    answers: list[Answer] = field(default_factory=list, init=False, repr=False)
    # Every ephemeral secret the client sealed with, by its public key: lets the final checks
    # recompute the keys of any request in the record and look for them in error messages.
    secrets: dict[bytes, bytes] = field(default_factory=dict, init=False, repr=False)
    # The responseBinding (spec 10.7.2) each bound request carried, by its public key: a reply to
    # one may echo it, and the final shape check must know which replies may.
    bindings: dict[bytes, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        self.base_url = self.base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=self.timeout,
                                  event_hooks={"response": [self._record]}, **self.http_options)

    def _record(self, response: httpx.Response) -> None:
        """Keep every answer, whichever check made the request (see the module docstring)."""
        response.read()
        request = response.request
        try:
            sent = bytes(request.content)[:RECORD_BODY_BYTES]
        except httpx.RequestNotRead:  # a streamed request body: nothing to keep
            sent = b""
        answer = Answer(request.method, request.url.path, sent, response.status_code,
                        response.headers.get("content-type", ""), response.content)
        try:
            answer.json = json.loads(response.content)
        except (ValueError, RecursionError):
            pass
        if request.method == "POST":
            answer.request_envelope = _lenient_envelope(sent)
        if isinstance(answer.json, dict) and "ciphertext" in answer.json:
            answer.response_envelope = _lenient_envelope(response.content)
        self.answers.append(answer)
        response.extensions["vault_answer"] = answer

    def close(self) -> None:
        self._http.close()

    # ---- plain HTTP ------------------------------------------------------------------------
    def get(self, path: str, **kwargs) -> httpx.Response:
        return self._http.get(path, **kwargs)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """Any method on any path (routing checks); recorded like every other answer."""
        return self._http.request(method, path, **kwargs)

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
        self.secrets[sealed.ephemeral_public_key] = secret
        return secret, sealed

    def exchange(self, plaintext: bytes, *, path: str = ENVELOPE_PATH, client_secret: bytes | None = None) -> Exchange:
        secret, sealed = self.seal(plaintext, client_secret=client_secret)
        response = self.post_raw(sealed.to_bytes(), path=path)
        return self.read_reply(plaintext, secret, sealed, response)

    def read_reply(self, plaintext: bytes, secret: bytes, sealed: envelope.Envelope, response: httpx.Response) -> Exchange:
        exchange = Exchange(plaintext, secret, sealed, response.status_code, response.content)
        answer = response.extensions.get("vault_answer")
        if answer is not None:
            answer.client_secret, answer.request_plaintext = secret, plaintext
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
            if answer is not None:
                answer.reply = exchange.reply
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
