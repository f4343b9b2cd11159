"""Endpoints and the E2E envelope (spec §2, §3, §10.1)."""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from ..protocol import envelope
from ..protocol.client import ProtocolViolation

from ._util import property_check, expect_success, expect_unencrypted_error, request_bytes, require, top_up_record
from .registry import CheckFailed, Context, Level, Observation, check

FRESHNESS_SAMPLES = 200


@check("e2e/health", section="2.1", level=Level.MUST,
       requirement='GET /health MUST answer 200 with {"status": "ok"}.')
def health(ctx: Context):
    response = ctx.client.get("/health")
    require(response.status_code == 200, "health status", expected=200, actual=response.status_code)
    require(response.json() == {"status": "ok"}, "health body", expected={"status": "ok"}, actual=response.text[:200])


@check("e2e/public-key", section="2.2", level=Level.MUST,
       requirement="GET /api/v1/enclave MUST answer 200 with publicKey: 64 lowercase hex digits, a valid X25519 key.")
def public_key(ctx: Context):
    response = ctx.client.get("/api/v1/enclave")
    require(response.status_code == 200, "status", expected=200, actual=response.status_code)
    value = response.json().get("publicKey")
    require(isinstance(value, str) and len(value) == 64 and value == value.lower() and all(c in "0123456789abcdef" for c in value),
            "publicKey must be 64 lowercase hex digits", expected="64 lowercase hex", actual=value)
    require(bytes.fromhex(value) == ctx.client.enclave_public_key, "publicKey changed between two GETs")
    # A key a client could never use is a broken key: a low-order point gives an all-zero secret.
    try:
        envelope.derive_key(bytes(range(1, 33)), bytes.fromhex(value))
    except envelope.EnvelopeError as error:
        raise CheckFailed("publicKey has low order", expected="a key of large order", actual=value) from error


def _ping(ctx: Context, message: str, **kwargs):
    return ctx.client.exchange(request_bytes("ping", {"message": message}), **kwargs)


@check("e2e/round-trip", section="3.3", level=Level.MUST,
       requirement="A sealed ping MUST be answered by a sealed reply that the client's ephemeral secret opens, "
                   "with pong equal to the message.")
def round_trip(ctx: Context):
    exchange = _ping(ctx, "conformance")
    require(exchange.status == 200, "HTTP status of an encrypted reply", expected=200, actual=exchange.status)
    data = expect_success(exchange, "ping")
    require(data.get("pong") == "conformance", "pong echoes message", expected="conformance", actual=data.get("pong"))
    require(isinstance(data.get("timestamp"), int), "timestamp is an integer", expected="int", actual=data.get("timestamp"))
    require(exchange.reply.get("error") is None, "error is null on success", expected=None, actual=exchange.reply.get("error"))


@check("e2e/seed-path", section="2.3", level=Level.MUST,
       requirement="POST /v1/enclave/post MUST behave exactly as POST /api/v1/enclave.")
def seed_path(ctx: Context):
    exchange = _ping(ctx, "seed-path", path="/v1/enclave/post")
    data = expect_success(exchange, "ping via /v1/enclave/post")
    require(data.get("pong") == "seed-path", "pong", expected="seed-path", actual=data.get("pong"))


def _freshness_sample(ctx: Context) -> list:
    sample = ctx.facts.setdefault("_freshness_sample", [])
    while len(sample) < ctx.options.get("freshness_samples", FRESHNESS_SAMPLES):
        exchange = _ping(ctx, "fresh")
        expect_success(exchange, "ping")
        sample.append(exchange.response)
    return sample


@check("e2e/response-fresh-key", section="3.4", level=Level.MUST,
       requirement="Every response MUST use a fresh X25519 ephemeral key pair (no ephemeralPublicKey ever repeats).")
def response_fresh_key(ctx: Context):
    keys = [r.ephemeral_public_key for r in _freshness_sample(ctx)]
    require(len(set(keys)) == len(keys), "a response ephemeral key repeated",
            expected=f"{len(keys)} distinct keys", actual=f"{len(set(keys))} distinct")
    require(ctx.client.enclave_public_key not in keys, "a response was sealed with the static key",
            expected="fresh keys", actual="the static key")


@check("e2e/response-fresh-nonce", section="3.4", level=Level.MUST,
       requirement="Every response MUST use a fresh random 24-byte nonce (no nonce ever repeats).")
def response_fresh_nonce(ctx: Context):
    nonces = [r.nonce for r in _freshness_sample(ctx)]
    require(len(set(nonces)) == len(nonces), "a response nonce repeated",
            expected=f"{len(nonces)} distinct nonces", actual=f"{len(set(nonces))} distinct")


@check("e2e/response-lowercase-hex", section="3.1", level=Level.SHOULD,
       requirement="Envelope fields SHOULD be lowercase hex without 0x, as the published client writes them.")
def response_lowercase_hex(ctx: Context):
    exchange = _ping(ctx, "hex")
    body = json.loads(exchange.raw_response)
    for name in ("ephemeralPublicKey", "nonce", "ciphertext"):
        value = body.get(name, "")
        require(value == value.lower(), f"{name} is not lowercase", expected="lowercase", actual=value[:16])


@check("e2e/round-trip-arbitrary", section="3.2", level=Level.MUST,
       requirement="Any UTF-8 JSON message MUST survive the round trip: ping echoes arbitrary text exactly.")
def round_trip_arbitrary(ctx: Context):
    @property_check(ctx, 40)
    @given(st.text(max_size=300))
    # Always tried, whatever the random draw: edge whitespace, combining marks, astral planes, NUL, empty.
    @example(" \t edge whitespace \r\n ")
    @example("e\u0301 \U0001F600 \u202e\x00")
    @example("")
    def prop(message):
        exchange = _ping(ctx, message)
        data = expect_success(exchange, "ping")
        require(data.get("pong") == message, "pong differs from message", expected=message, actual=data.get("pong"))

    prop()


@check("e2e/forward-secrecy", section="10.1", level=Level.MUST,
       requirement="Request i's ephemeral secret MUST open request i and response i, and nothing else.")
def forward_secrecy(ctx: Context):
    @property_check(ctx, 10)
    @given(st.lists(st.text(max_size=40), min_size=2, max_size=5))
    def prop(messages):
        exchanges = [_ping(ctx, m) for m in messages]
        server_key = ctx.client.enclave_public_key
        for i, mine in enumerate(exchanges):
            require(mine.response is not None, "reply was not encrypted")
            for j, other in enumerate(exchanges):
                opened_request = _try_open_request(other.request, mine.client_secret, server_key)
                opened_response = _try_open(other.response, mine.client_secret)
                if i == j:
                    require(opened_request == other.request_plaintext, "own request does not open")
                    require(opened_response is not None, "own response does not open")
                else:
                    require(opened_request is None and opened_response is None,
                            f"secret of request {i} opens exchange {j}", expected="nothing opens", actual="opened")

    prop()


def _try_open(sealed, secret):
    try:
        return envelope.open_envelope(sealed, secret)
    except envelope.EnvelopeError:
        return None


def _try_open_request(sealed, client_secret, server_public):
    # The request was sealed to the server's static key; its sender can re-derive the same key.
    try:
        key_holder = envelope.Envelope(server_public, sealed.nonce, sealed.ciphertext)
        return envelope.open_envelope(key_holder, client_secret)
    except envelope.EnvelopeError:
        return None


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@check("e2e/tampered-ciphertext", section="3.5", level=Level.MUST,
       requirement="A request whose ciphertext or tag was altered MUST get an unencrypted 4xx and nothing else.")
def tampered_ciphertext(ctx: Context):
    secret, sealed = ctx.client.seal(request_bytes("ping", {"message": "x"}))
    for bit in (0, 7, len(sealed.ciphertext) * 8 - 1):
        bad = envelope.Envelope(sealed.ephemeral_public_key, sealed.nonce, _flip(sealed.ciphertext, bit))
        expect_unencrypted_error(ctx, bad.to_bytes(), f"ciphertext bit {bit} flipped")


@check("e2e/tampered-nonce", section="3.5", level=Level.MUST,
       requirement="A request whose nonce was altered MUST get an unencrypted 4xx and nothing else.")
def tampered_nonce(ctx: Context):
    secret, sealed = ctx.client.seal(request_bytes("ping", {"message": "x"}))
    for bit in (0, 95, 191):
        bad = envelope.Envelope(sealed.ephemeral_public_key, _flip(sealed.nonce, bit), sealed.ciphertext)
        expect_unencrypted_error(ctx, bad.to_bytes(), f"nonce bit {bit} flipped")


@check("e2e/tampered-key", section="3.5", level=Level.MUST,
       requirement="A request whose ephemeral public key was altered (other than bit 255, which X25519 ignores) "
                   "MUST get an unencrypted 4xx and nothing else.")
def tampered_key(ctx: Context):
    secret, sealed = ctx.client.seal(request_bytes("ping", {"message": "x"}))
    for bit in (0, 100, 254):
        bad = envelope.Envelope(_flip(sealed.ephemeral_public_key, bit), sealed.nonce, sealed.ciphertext)
        expect_unencrypted_error(ctx, bad.to_bytes(), f"key bit {bit} flipped")


@check("e2e/bit-flip-rejected", section="3.5", level=Level.MUST,
       requirement="Any single-bit change to a sealed request (key bits 0..254, nonce, ciphertext) MUST be rejected.")
def bit_flip_rejected(ctx: Context):
    secret, sealed = ctx.client.seal(request_bytes("ping", {"message": "property"}))
    fields = {"ephemeralPublicKey": 255, "nonce": 192, "ciphertext": len(sealed.ciphertext) * 8}

    @property_check(ctx, 60)
    @given(st.sampled_from(sorted(fields)).flatmap(lambda f: st.tuples(st.just(f), st.integers(0, fields[f] - 1))))
    def prop(target):
        name, bit = target
        parts = sealed.to_json()
        parts[name] = _flip(bytes.fromhex(parts[name]), bit).hex()
        expect_unencrypted_error(ctx, json.dumps(parts).encode(), f"{name} bit {bit} flipped")

    prop()


@check("e2e/public-key-high-bit", section="3.6", level=Level.INFO,
       requirement="X25519 ignores bit 255 of a public key (RFC 7748 §5); a Vault MAY accept or reject such a key.")
def public_key_high_bit(ctx: Context):
    secret, sealed = ctx.client.seal(request_bytes("ping", {"message": "x"}))
    bad = envelope.Envelope(_flip(sealed.ephemeral_public_key, 255), sealed.nonce, sealed.ciphertext)
    response = ctx.client.post_raw(bad.to_bytes())
    try:
        ctx.client.read_reply(b"", secret, sealed, response)
        verdict = "accepted (same shared secret; the reply opens)" if response.status_code == 200 else "rejected"
    except ProtocolViolation:
        verdict = f"answered HTTP {response.status_code} with an unreadable reply"
    raise Observation(f"a request with bit 255 of its key flipped was {verdict}")


@check("e2e/replay-fresh-reply", section="3.4", level=Level.MUST,
       requirement="The same sealed request posted twice MUST get two response envelopes with different "
                   "ephemeral keys and nonces (or the replay refused, 10.3).")
def replay_fresh_reply(ctx: Context):
    plaintext = request_bytes("ping", {"message": "replay"})
    secret, sealed = ctx.client.seal(plaintext)
    replies = []
    for _ in range(3):
        exchange = ctx.client.read_reply(plaintext, secret, sealed, ctx.client.post_raw(sealed.to_bytes()))
        if exchange.response is not None:
            replies.append(exchange.response)
    keys = {r.ephemeral_public_key for r in replies}
    nonces = {r.nonce for r in replies}
    require(len(keys) == len(replies) and len(nonces) == len(replies),
            "a replayed request got a reply with the same key or nonce (derived from the request?)",
            expected=f"{len(replies)} distinct keys and nonces", actual=f"{len(keys)} keys, {len(nonces)} nonces")


@check("e2e/run-freshness", section="3.4", level=Level.MUST, tags=("final",),
       requirement="Across every reply of the run (successes, errors, replays, attestation answers), no response "
                   "ephemeral key and no nonce MAY repeat; a reply's nonce MUST differ from its request's, its key "
                   "from its request's key and from the static key.")
def run_freshness(ctx: Context):
    top_up_record(ctx)
    static = ctx.client.enclave_public_key
    seen_keys: dict[bytes, int] = {}
    seen_nonces: dict[bytes, int] = {}
    problems = []
    replies = [a for a in ctx.client.answers if a.response_envelope is not None]
    for index, answer in enumerate(replies):
        reply, request = answer.response_envelope, answer.request_envelope
        where = f"reply {index} ({answer.method} {answer.path}, HTTP {answer.status})"
        if reply.ephemeral_public_key in seen_keys:
            problems.append(f"{where}: its key repeats reply {seen_keys[reply.ephemeral_public_key]}'s")
        if reply.nonce in seen_nonces:
            problems.append(f"{where}: its nonce repeats reply {seen_nonces[reply.nonce]}'s")
        seen_keys.setdefault(reply.ephemeral_public_key, index)
        seen_nonces.setdefault(reply.nonce, index)
        if reply.ephemeral_public_key == static:
            problems.append(f"{where}: sealed with the static key")
        if request is not None and reply.nonce == request.nonce:
            problems.append(f"{where}: its nonce is the request's nonce")
        if request is not None and reply.ephemeral_public_key == request.ephemeral_public_key:
            problems.append(f"{where}: its key is the request's key")
    require(not problems, f"{len(problems)} freshness violations among the run's {len(replies)} replies",
            expected="fresh key and nonce in every reply", actual=problems[:10])


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


@check("e2e/run-content-types", section="2.5", level=Level.MUST, tags=("final",),
       requirement="Every answer of the run with a body MUST carry Content-Type: application/json.")
def run_content_types(ctx: Context):
    top_up_record(ctx)
    wrong = [f"{a.method} {a.path} -> HTTP {a.status}: {a.content_type or '(none)'}" for a in ctx.client.answers
             if a.method != "HEAD" and _media_type(a.content_type) != "application/json"]
    require(not wrong, f"{len(wrong)} answers are not application/json", expected="application/json", actual=wrong[:10])


# Paths a Vault does not serve (paths are exact, spec §2), and methods its paths do not allow.
UNKNOWN_PATHS = [("GET", "/conformance/no-such-path"), ("GET", "/"), ("GET", "/api/v1/enclave/"),
                 ("POST", "/api/v1/enclave/"), ("GET", "/API/V1/ENCLAVE"), ("GET", "/api/v2/enclave"),
                 ("POST", "/api/v1/enclave/post"), ("GET", "/healthz"), ("GET", "/health/")]
WRONG_METHODS = [("POST", "/health"), ("PUT", "/health"), ("DELETE", "/health"),
                 ("PUT", "/api/v1/enclave"), ("DELETE", "/api/v1/enclave"), ("PATCH", "/api/v1/enclave"),
                 ("GET", "/v1/enclave/post"), ("PUT", "/v1/enclave/post"), ("DELETE", "/v1/enclave/post")]


@check("e2e/routing", section="2.5", level=Level.MUST,
       requirement="A path the Vault does not serve MUST be answered 404 not_found, a method a path does not allow "
                   "405 method_not_allowed, each an unencrypted error (4.1).")
def routing(ctx: Context):
    from ._util import unencrypted_shape_problem

    wrong = []
    for (method, path), status, type_ in ([(p, 404, "not_found") for p in UNKNOWN_PATHS]
                                          + [(p, 405, "method_not_allowed") for p in WRONG_METHODS]):
        response = ctx.client.request(method, path, content=b"{}" if method in ("POST", "PUT", "PATCH") else None)
        try:
            body = response.json()
        except ValueError:
            body = response.text[:80]
        problem = unencrypted_shape_problem(body, response.status_code)
        if response.status_code != status:
            wrong.append(f"{method} {path}: HTTP {response.status_code}, expected {status}")
        elif problem:
            wrong.append(f"{method} {path}: {problem}")
        elif body["error"]["type"] != type_:
            wrong.append(f"{method} {path}: type {body['error']['type']!r}, expected {type_!r}")
    require(not wrong, f"{len(wrong)} routing answers are wrong", expected="404 not_found / 405 method_not_allowed",
            actual=wrong)
