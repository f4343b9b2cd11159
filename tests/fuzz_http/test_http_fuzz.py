"""Hostile HTTP against a real reference server: generated methods, paths, queries, headers,
framings, bodies, sealed garbage plaintexts and slow or partial clients, each answer judged
against docs/spec 2 (routes, 2.6 limits), 3.1 and 4 (shapes, codes, robustness).

The oracle, for every request: the status is one the spec gives for that kind of request; every
non-200 answer is exactly the 4.1 error with a table-1 type whose status matches; every answer
with a body is ``application/json``; a 200 has its route's shape (a response envelope opens to a
4.2 reply with a table-2 code, never ``internal_server_error``); nothing is 5xx; no body holds a
stack trace, an exception name or a file path; a connection closes without an answer only where
2.6 says the Vault closes (a request not received completely, the connection cap). After every
example ``/health`` answers 200. At the end: RSS grew by less than 64 MiB, descriptors are back
to the baseline + 8 once the edge's timeouts have passed, and the log has no Traceback.

Budget: VAULT_FUZZ_EXAMPLES examples per property (default 25: the file runs in about 25 s on
two cores; the slow-client and declared-length properties run a third and a quarter as many, as
each of their examples waits out a deadline). A longer run (about 4 minutes per 250 examples)::

    VAULT_FUZZ_EXAMPLES=2000 HYPOTHESIS_PROFILE=ci pytest -q tests/fuzz_http

Tox runs that as ``tox -e fuzz-http`` (VAULT_FUZZ_EXAMPLES overrides its budget there too).
VAULT_FUZZ_HTTP=auto,h11 fuzzes uvicorn's pure-Python parser as well (``auto`` is httptools,
what a deployment gets); under h11 the log check fails today on the pinned h11 defect below.
With shrinking on (VAULT_FUZZ_SHRINK=1) a failure is reduced to a small example, at the price of
minutes.

Known defects of the reference are pinned by the xfails near the end of this file, each a minimal
reproduction, strict where the defect shows every time (so the pin fails once it is fixed); where
a property meets one, it runs with that one requirement relaxed or that input left out, and says
so.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, unquote_to_bytes, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from harness.protocol import envelope as client_envelope

from .conftest import CONNECTION_CAP, IDLE_TIMEOUT, REQUEST_TIMEOUT

pytestmark = pytest.mark.server

EXAMPLES = int(os.environ.get("VAULT_FUZZ_EXAMPLES", "25"))
# Shrinking a failure costs minutes here (each step is a round trip, some wait a deadline): off
# unless asked for with VAULT_FUZZ_SHRINK=1; the failing example is printed either way.
PHASES = [phase for phase in Phase if phase is not Phase.shrink or os.environ.get("VAULT_FUZZ_SHRINK") == "1"]
FUZZ = settings(max_examples=EXAMPLES, deadline=None, phases=PHASES,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
MIB = 1 << 20
MAX_HEAD = 16 * 1024
READ_LIMIT = REQUEST_TIMEOUT + 4  # longest wait for any answer: past it the Vault hangs
RSS_GROWTH_BOUND = 64 * MIB
DESCRIPTOR_SLACK = 8

# ---- the documented answers (docs/spec/04-errors.md 4.3, table 1 and 2) ---------------------
TABLE_1 = {"invalid_json": 400, "invalid_envelope": 400, "invalid_hex": 400, "invalid_length": 400,
           "low_order_public_key": 400, "decryption_failed": 400, "payload_too_large": 413,
           "not_found": 404, "method_not_allowed": 405, "service_unavailable": 503,
           "bad_request": 400, "request_timeout": 408, "headers_too_large": 431}
TABLE_2 = {"serialization_error", "invalid_input", "unknown_operation", "auth_missing",
           "auth_invalid_admin_key", "auth_invalid_rotation_code", "auth_invalid_access_token",
           "auth_unsupported_method", "auth_unsupported_operation", "auth_insufficient_scope",
           "not_found",
           "unsupported_operation"}  # 11.4 (keyPolicy without KMS), missing from table 2
# internal_server_error is documented, but signals a defect (4.4): never acceptable here
ENVELOPE_REFUSALS = {"invalid_json", "invalid_envelope", "invalid_hex", "invalid_length",
                     "low_order_public_key", "decryption_failed"}

HEALTH, PUBLIC_KEY, SEED_PATH = "/health", "/api/v1/enclave", "/v1/enclave/post"
ATTESTATION, DEV_ROOT = "/api/v1/enclave/attestation", "/api/v1/enclave/attestation/dev-root"
DOCUMENTED_PATHS = [HEALTH, PUBLIC_KEY, SEED_PATH, ATTESTATION, DEV_ROOT]
OPERATIONS = ["ping", "serviceAccount:create", "serviceAccount:get", "serviceAccount:rotate", "enclave:attest",
              "enclave:keyPolicy", "eoa:create", "eoa:list", "eoa:read", "eoa:signMessage", "eoa:signTransaction",
              "eoa:signTypedData", "eoa:signAuthorization", "eoa:signStructuredMessage", "accessToken:create",
              "accessToken:list", "accessToken:read", "accessToken:revoke", "solana:create", "solana:list",
              "solana:signMessage", "solana:signTransaction", "kms:GenerateRandom", "kms:DescribeKey", "kms:Decrypt",
              "kms:GenerateDataKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy"]
# What an answer must never show (4.4). Generated paths avoid these, since a 404 may name its path.
LEAK = re.compile(r'Traceback|File "|\.py\b|\b[A-Z]\w*(Error|Exception)\b'
                  r'|(^|[\s"\'(])/(usr|home|tmp|opt|lib|site-packages|proc)/')


# ---- raw HTTP ---------------------------------------------------------------------------------
@dataclass
class Answer:
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    interim: list[int] = field(default_factory=list)

    def header(self, name: bytes) -> bytes | None:
        values = [v for k, v in self.headers if k.lower() == name]
        return values[-1] if values else None

    @property
    def closes(self) -> bool:
        return (self.header(b"connection") or b"").lower() == b"close"


class Closed(Exception):
    """The connection ended before a whole answer arrived."""


class Hung(Exception):
    """Nothing happened for READ_LIMIT seconds."""


class Connection:
    def __init__(self, vault, timeout: float = READ_LIMIT):
        self.sock = socket.create_connection(("127.0.0.1", vault.port), timeout=timeout)
        self.buffer = b""

    def send(self, data: bytes, pieces: int = 1, pause: float = 0.0) -> bool:
        """Send ``data`` in ``pieces`` writes ``pause`` apart; False when the Vault closed first."""
        step = max(1, -(-len(data) // pieces))
        try:
            for start in range(0, len(data), step):
                self.sock.sendall(data[start:start + step])
                if pause:
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(1 << 16)
        except socket.timeout:
            raise Hung() from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed(self.buffer)
        self.buffer += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_answer(self, method: bytes) -> Answer:
        """One whole answer (interim 1xx skipped), framed by Content-Length or chunked."""
        interim = []
        while True:
            status_line = self._line()
            parts = status_line.split(b" ", 2)
            assert len(parts) >= 2 and parts[0] == b"HTTP/1.1" and parts[1].isdigit(), status_line
            headers = []
            while line := self._line():
                name, _, value = line.partition(b":")
                headers.append((name.strip().lower(), value.strip()))
            status = int(parts[1])
            if status >= 200:
                break
            interim.append(status)
        answer = Answer(status, parts[2] if len(parts) > 2 else b"", headers, b"", interim)
        if method == b"HEAD" or status in (204, 304):
            return answer
        if (answer.header(b"transfer-encoding") or b"").lower() == b"chunked":
            body = b""
            while size := int(self._line().split(b";")[0], 16):
                body += self._exactly(size)
                self._exactly(2)
            while self._line():
                pass
            answer.body = body
        elif (length := answer.header(b"content-length")) is not None:
            answer.body = self._exactly(int(length))
        else:  # framed by the close
            try:
                while True:
                    self._fill()
            except Closed:
                answer.body, self.buffer = self.buffer, b""
        return answer

    def ends(self) -> bool:
        """True when the Vault closes the connection (after what it already sent) in time."""
        try:
            while True:
                self._fill()
        except Closed:
            return True
        except Hung:
            return False

    def close(self) -> None:
        self.sock.close()


# ---- requests and what the spec allows for each -----------------------------------------------
@dataclass
class Request:
    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    framing: str = "length"  # "length", "chunked", "none", or "raw" (the body carries its own framing)
    chunks: list[int] = field(default_factory=list)  # chunk sizes for "chunked"
    # what the body must get on an envelope path: a set of table-1 types, or "sealed"
    body_expectation: object = None
    secret: bytes | None = None  # when the body is an envelope the harness sealed
    pieces: int = 1
    pause: float = 0.0

    def head(self) -> bytes:
        lines = [self.method + b" " + self.target + b" HTTP/1.1", b"Host: 127.0.0.1"]
        lines += [name + b": " + value for name, value in self.headers]
        if self.framing == "length":
            lines.append(b"Content-Length: %d" % len(self.body))
        elif self.framing == "chunked":
            lines.append(b"Transfer-Encoding: chunked")
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def payload(self) -> bytes:
        if self.framing != "chunked":
            return self.body
        out, start = b"", 0
        for size in self.chunks or [len(self.body)]:
            piece = self.body[start:start + size]
            start += len(piece)
            if piece:
                out += b"%x\r\n" % len(piece) + piece + b"\r\n"
        if start < len(self.body):
            out += b"%x\r\n" % (len(self.body) - start) + self.body[start:] + b"\r\n"
        return out + b"0\r\n\r\n"

    def raw(self) -> bytes:
        return self.head() + self.payload()


def route_path(target: bytes) -> str:
    """The path the spec routes on: the request target's path, byte for byte (2.5); the
    absolute form (RFC 9112 3.2.2) names it after the authority."""
    text = target.decode("latin-1")
    if text.startswith(("http://", "https://")):
        text = urlsplit(text).path or "/"
    return text.split("?", 1)[0]


def query_nonce_ok(target: bytes) -> bool | None:
    """True/False when the ``nonce`` query is plainly valid/invalid (8.7), None when unsure."""
    query = target.decode("latin-1").partition("?")[2]
    values = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == "nonce"]
    if not values:
        return True
    if len(values) > 1:
        return None  # which one counts is not specified
    value = values[0]
    if len(value) % 2 or len(value) > 1024 or not re.fullmatch(r"[0-9a-fA-F]*", value):
        return False
    return True


def allowed(request: Request) -> set:
    """The (status, type) pairs the spec allows; type None for a 200 of the route's shape."""
    method, path = request.method.decode("latin-1"), route_path(request.target)
    get_like = method in ("GET", "HEAD")
    if path == HEALTH:
        return {(200, None)} if get_like else {(405, "method_not_allowed")}
    if path == ATTESTATION:
        if not get_like:
            return {(405, "method_not_allowed")}
        ok = query_nonce_ok(request.target)
        refused = {(400, "invalid_hex"), (400, "invalid_input")}
        return {(200, None)} if ok else refused if ok is False else refused | {(200, None)}
    if path == DEV_ROOT:
        return {(200, None)} if get_like else {(405, "method_not_allowed")}
    if path in (PUBLIC_KEY, SEED_PATH):
        if method == "POST":
            if len(request.body) > MIB:
                return {(413, "payload_too_large")}
            if request.body_expectation == "sealed":
                return {(200, None)}
            return {(400, kind) for kind in (request.body_expectation or ENVELOPE_REFUSALS)}
        if get_like and path == PUBLIC_KEY:
            return {(200, None)}
        return {(405, "method_not_allowed")}
    return {(404, "not_found")}


def check_answer(request: Request, answer: Answer, permitted: set, *, shaped_400: bool = True) -> None:
    """The oracle for one answer (see the module docstring). ``shaped_400=False`` relaxes only
    the shape of a 400 (the reference's known defect for unparseable HTTP, pinned below)."""
    context = f"{request.method!r} {request.target[:200]!r} -> {answer.status} {answer.body[:300]!r}"
    assert answer.status < 500, context  # 503 is for an unreachable enclave, and it is in-process
    text = answer.body.decode("utf-8", errors="replace")
    assert not LEAK.search(text), context
    if request.method == b"HEAD":
        assert answer.body == b"", context
    if answer.status == 400 and not shaped_400 and (answer.header(b"content-type") or b"").startswith(b"text/plain"):
        assert answer.closes, context
        return
    if answer.body:
        content_type = (answer.header(b"content-type") or b"").split(b";")[0].strip().lower()
        assert content_type == b"application/json", context
    if answer.status != 200:
        assert request.method == b"HEAD" or answer.body, context
        if request.method != b"HEAD":
            error = json.loads(answer.body)
            assert list(error) == ["error"], context
            inner = error["error"]
            assert set(inner) <= {"message", "status", "type", "details"}, context
            assert {"message", "status", "type"} <= set(inner), context
            assert isinstance(inner["message"], str) and isinstance(inner.get("details", ""), str), context
            assert inner["status"] == answer.status and TABLE_1.get(inner["type"]) == answer.status, context
            assert (answer.status, inner["type"]) in permitted, context
        else:
            assert answer.status in {status for status, _ in permitted}, context
        if route_path(request.target) in (PUBLIC_KEY, SEED_PATH) and len(request.body) >= 16:
            # a bad value is described, never quoted (4.4)
            for run in re.findall(rb"[0-9a-fA-F]{16,}", request.body[:1 << 16])[:64]:
                assert run[:16] not in answer.body, context
        return
    assert (200, None) in permitted, context
    if request.method == b"HEAD":
        return
    check_success_shape(request, answer, context)


def check_success_shape(request: Request, answer: Answer, context: str) -> None:
    path, body = route_path(request.target), json.loads(answer.body)
    assert isinstance(body, dict) and "error" not in body, context
    if path == HEALTH:
        assert body == {"status": "ok"}, context
    elif path == PUBLIC_KEY and request.method == b"GET":
        assert re.fullmatch(r"[0-9a-f]{64}", body["publicKey"]), context
    elif path == ATTESTATION:
        assert re.fullmatch(r"[0-9a-f]{64}", body["publicKey"]), context
        assert base64.b64decode(body["attestationDocument"], validate=True), context
    elif path == DEV_ROOT:
        assert body["rootPem"].startswith("-----BEGIN CERTIFICATE-----"), context
    else:  # a response envelope (3.1) opening to a 4.2 reply
        assert set(body) == {"ephemeralPublicKey", "nonce", "ciphertext"}, context
        for name in body:
            assert re.fullmatch(r"(?:[0-9a-f]{2})+", body[name]), context
        assert request.secret is not None, "a body the harness did not seal decrypted: " + context
        reply = json.loads(client_envelope.open_envelope(client_envelope.Envelope.from_json(body), request.secret))
        assert set(reply) == {"success", "data", "error"}, context
        if reply["success"] is True:
            assert reply["error"] is None, context
        else:
            assert reply["success"] is False and reply["data"] is None, context
            assert set(reply["error"]) <= {"code", "message", "details"}, context
            assert reply["error"]["code"] in TABLE_2, f"{context} reply {reply}"
            assert isinstance(reply["error"]["message"], str), context


def exchange(vault, requests: list[Request], *, shaped_400: bool = True, permitted=allowed) -> list[Answer]:
    """Send ``requests`` pipelined on one connection and judge each answer; the Vault may close
    after an answer that says ``connection: close`` (later requests then go unanswered)."""
    connection = Connection(vault)
    try:
        sent = True
        for request in requests:
            sent = sent and connection.send(request.raw(), request.pieces, request.pause)
        answers = []
        for request in requests:
            try:
                answer = connection.read_answer(request.method)
            except Closed as closed:
                raise AssertionError(f"closed without an answer to {request.method!r} {request.target[:200]!r} "
                                     f"(sent whole: {sent}, got {closed.args[0][:200]!r})") from None
            check_answer(request, answer, permitted(request), shaped_400=shaped_400)
            answers.append(answer)
            if answer.closes:
                assert connection.ends(), "the Vault said connection: close and kept it open"
                break
        return answers
    finally:
        connection.close()


def assert_serving(vault) -> None:
    answer = httpx.get(vault.url + HEALTH, timeout=READ_LIMIT)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}, answer.text


# ---- generators ------------------------------------------------------------------------------
def no_leak(path: str) -> bool:
    return not LEAK.search(path)


METHODS = st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS"])
PCHAR = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@"


def near_misses(path: str) -> st.SearchStrategy[str]:
    """Paths one edit away from a documented one (case, slash, segment, suffix)."""
    return st.one_of(
        st.just(path + "/"), st.just("/" + path), st.just(path.upper()), st.just(path.replace("v1", "v2")),
        st.just(path + "/x"), st.just(path[:-1]), st.just(path.rsplit("/", 1)[0] or "/"),
        st.just(path.replace("/", "//", 1)), st.just(path + "/."), st.just(path + ";x"), st.just("/."+ path),
        st.integers(1, len(path) - 1).map(lambda i: path[:i] + path[i].swapcase() + path[i + 1:]),
    )


def percent_encoded(text: str) -> str:
    return "".join("%%%02X" % byte for byte in text.encode())


random_paths = st.one_of(
    st.text(PCHAR + "/", max_size=40).map(lambda s: "/" + s),
    st.text(st.characters(min_codepoint=0x80, max_codepoint=0x2FFFF, exclude_categories=["Cs"]), min_size=1,
            max_size=10).map(lambda s: "/" + percent_encoded(s)),  # non-ASCII, percent-encoded (RFC 3986)
    st.integers(200, 8000).map(lambda n: "/" + "a" * n),  # very long, inside the head limit
    st.binary(min_size=1, max_size=20).map(lambda b: "/" + "".join("%%%02x" % x for x in b)),
).filter(lambda p: unquote_to_bytes(p) not in {d.encode() for d in DOCUMENTED_PATHS}
          and no_leak(p) and no_leak(unquote(p)))
paths = st.one_of(st.sampled_from(DOCUMENTED_PATHS), *(near_misses(p) for p in DOCUMENTED_PATHS), random_paths)

hex_text = st.binary(max_size=600).map(bytes.hex)
nonce_values = st.one_of(
    hex_text, hex_text.map(str.upper), st.binary(min_size=1, max_size=40).map(lambda b: b.hex()[1:]),  # odd
    st.text("0123456789abcdefgxyz+ %-", max_size=30), st.just("0" * 1026), st.just("0" * 1024),
    st.just("0x00"), st.just("00" * 512 + "00"),
)
raw_nonces = nonce_values.map(lambda v: v.replace(" ", "+"))  # a raw space would end the target
queries = st.one_of(
    st.just(""),
    raw_nonces.map(lambda v: "?nonce=" + v),
    nonce_values.map(lambda v: "?nonce=" + percent_encoded(v)),
    st.tuples(raw_nonces, raw_nonces).map(lambda t: f"?nonce={t[0]}&nonce={t[1]}"),
    st.text(PCHAR + "?/&=%", max_size=60).map(lambda q: "?" + q),
)


def header_names():
    return st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_!#$%&'*+.^`|~", min_size=1,
                   max_size=30).filter(lambda n: n.lower() not in {"host", "content-length", "transfer-encoding",
                                                                    "connection", "expect", "upgrade"})


# visible ASCII and obs-text (RFC 9110 5.5), no leading or trailing space
header_values = st.binary(max_size=200).map(
    lambda b: bytes(c for c in b if c == 0x09 or 0x20 <= c <= 0x7E or c >= 0x80).strip(b" \t"))
well_formed_headers = st.lists(st.tuples(header_names().map(str.encode), header_values), max_size=8).map(
    lambda hs: hs + hs[:2])  # some names twice
connection_headers = st.sampled_from([[], [(b"Connection", b"close")], [(b"Connection", b"keep-alive")],
                                      [(b"Connection", b"x-foo, keep-alive")], [(b"Expect", b"100-continue")],
                                      [(b"Content-Type", b"text/plain")], [(b"Content-Type", b"application/json")]])


@st.composite
def routed_requests(draw, bodies=None):
    path = draw(paths)
    target = path + (draw(queries) if draw(st.booleans()) else "")
    # the absolute form (RFC 9112 3.2.2); uvicorn's h11 front routes on it whole: pinned below
    if CURRENT["vault"].http != "h11" and draw(st.integers(0, 9)) == 0:
        target = "http://127.0.0.1" + target
    method = draw(METHODS)
    headers = draw(well_formed_headers) + draw(connection_headers)
    request = Request(method, target.encode(), headers)
    if method in (b"POST", b"PUT", b"PATCH") or draw(st.booleans()):
        request.body, request.body_expectation, request.secret = draw(bodies or envelope_bodies())
    request.framing = draw(st.sampled_from(["length", "length", "chunked"] + ([] if request.body else ["none"])))
    if request.framing == "chunked":
        request.chunks = draw(st.lists(st.integers(1, 4096), max_size=6))
    return request


# ---- bodies ---------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20)


def _public_key_cache():
    cache = {}

    def get(vault) -> bytes:
        if vault.url not in cache:
            cache[vault.url] = bytes.fromhex(httpx.get(vault.url + PUBLIC_KEY, timeout=10).json()["publicKey"])
        return cache[vault.url]
    return get


public_key_of = _public_key_cache()
CURRENT = {}  # the vault the running test uses, so body strategies can seal to its key


def seal(plaintext: bytes) -> tuple[bytes, str, bytes]:
    secret = os.urandom(32)
    sealed = client_envelope.seal(public_key_of(CURRENT["vault"]), plaintext, ephemeral_secret=secret,
                                  nonce=os.urandom(24))
    return sealed.to_bytes(), "sealed", secret


def deep(n: int, open_: str = "[", close: str = "]") -> bytes:
    return (open_ * n + close * n).encode()


plaintexts = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.tuples(st.sampled_from(OPERATIONS), json_values, json_values).map(
        lambda t: json.dumps({"operation": t[0], "options": t[1], "auth": t[2]}).encode()),
    st.tuples(st.sampled_from(OPERATIONS), st.dictionaries(st.text(max_size=12), json_values, max_size=4)).map(
        lambda t: json.dumps({"operation": t[0], "options": t[1]}).encode()),
    st.binary(max_size=200),  # not UTF-8, not JSON
    st.sampled_from([1, 64, 1000, 100_000]).map(lambda n: b'{"operation":"ping","options":' + deep(n) + b"}"),
    st.sampled_from([1, 64, 1000, 100_000]).map(deep),
    st.sampled_from([b'{"operation":"ping","options":{"message":1' + b"0" * 5000 + b"}}",  # past int()'s digit cap
                     b'{"operation":"ping","options":{"message":1e999}}',
                     b'{"operation":"ping","options":{"message":-0.0}}',
                     b'{"operation":"ping","options":{"message":NaN}}',
                     b'{"operation":"ping","options":{"message":"\\ud800"}}',
                     b'{"operation":"ping","operation":"ping"}',
                     b'\xef\xbb\xbf{"operation":"ping"}',
                     b'{"operation":"ping"} {}',
                     b'{"operation":"\\u0000"}',
                     b'{"operation":"ping","options":{"message":"' + b"x" * 400_000 + b'"}}']),
    st.text(max_size=300).map(lambda s: json.dumps({"operation": "ping", "options": {"message": s}}).encode()),
)
good_key, good_nonce = "11" * 32, "22" * 24
LOW_ORDER_KEYS = ["00" * 32, "01" + "00" * 31, "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
                  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"]
envelope_member_values = st.one_of(
    hex_text, st.text("0123456789abcdefABCDEFxg \t+-_", max_size=80), st.just("0x" + "00" * 32),
    st.integers(), st.none(), st.lists(st.integers(), max_size=2), st.just("٠" * 64), st.just("00" * 32 + "\u00a0"),
)


def envelope_json(key, nonce, ciphertext, extra=None) -> bytes:
    members = {"ephemeralPublicKey": key, "nonce": nonce, "ciphertext": ciphertext, **(extra or {})}
    return json.dumps({k: v for k, v in members.items() if v is not ...}).encode()


def _body_strategies():
    """(body, the table-1 types it may get or "sealed", the sealing secret)."""
    any_refusal = ENVELOPE_REFUSALS
    plain = lambda s, kinds: s.map(lambda body: (body, kinds, None))  # noqa: E731
    return [
        plain(st.just(b""), {"invalid_json"}),
        plain(st.binary(max_size=300), {"invalid_json"} | {"invalid_envelope"}),  # bytes that happen to be JSON
        plain(st.binary(min_size=1, max_size=50).map(lambda b: b"\xff" + b), {"invalid_json"}),  # not UTF-8
        plain(st.sampled_from([b"[]", b"null", b'"x"', b"1", b"true", b'{"a":1}{}', b'{"a":1} x', b"\x0c{}",
                               b'\xef\xbb\xbf{"ephemeralPublicKey":"00"}', b'{"a":1,"a":2}', b"{", b"\x00"]),
              {"invalid_json", "invalid_envelope"}),
        plain(st.sampled_from([10, 1000, 100_000, 500_000]).map(
            lambda n: deep(n, "{\"a\":", "}")[:5 * n] + b"1" + b"}" * n),
              {"invalid_json", "invalid_envelope"}),
        plain(st.sampled_from([1000, 100_000, 400_000]).map(deep), {"invalid_json"}),
        plain(json_values.map(lambda v: json.dumps(v).encode()), any_refusal),
        plain(st.tuples(envelope_member_values, envelope_member_values, envelope_member_values).map(
            lambda t: envelope_json(*t)), any_refusal),
        plain(st.tuples(st.binary(max_size=40), st.binary(max_size=30), st.binary(max_size=64)).map(
            lambda t: envelope_json(t[0].hex(), t[1].hex(), t[2].hex())), any_refusal),  # wrong lengths, mostly
        plain(st.tuples(st.sampled_from(LOW_ORDER_KEYS), st.binary(min_size=16, max_size=64)).map(
            lambda t: envelope_json(t[0], good_nonce, t[1].hex())), {"low_order_public_key"}),
        plain(st.binary(min_size=16, max_size=300).map(lambda c: envelope_json(good_key, good_nonce, c.hex())),
              {"decryption_failed"}),
        # near and over the 1 MiB limit (3.5): at most 1 MiB is never refused for its size
        plain(st.sampled_from([MIB - 1, MIB]).map(lambda n: b" " * (n - 2) + b"{}"), {"invalid_envelope"}),
        plain(st.sampled_from([MIB + 1, 2 * MIB, 3 * MIB]).map(lambda n: b"{" * n), {"payload_too_large"}),
        plain(st.integers(0, 200).map(lambda pad: envelope_json(good_key, good_nonce, "00" * ((MIB - 200) // 2),
                                                                {"x": "y" * pad})), {"decryption_failed"}),
        plaintexts.map(seal),
        plaintexts.map(seal).map(lambda t: (t[0][:-2] + b"0" + t[0][-2:] if t[0].endswith(b'"}') else t[0],
                                            {"invalid_hex"} | {"decryption_failed"}, None)),  # odd digits
    ]


def envelope_bodies():
    return st.deferred(lambda: st.one_of(*_body_strategies()))


@pytest.fixture(autouse=True)
def current_vault(vault):
    CURRENT["vault"] = vault
    yield
    CURRENT.pop("vault", None)


def count(n: int = 1) -> None:
    CURRENT["vault"].sent += n


# ---- properties -----------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_well_formed_requests_get_their_documented_answer(vault, data):
    """Methods x paths x queries x headers x bodies, pipelined 1-3 to a connection, written at once or
    in pieces: every answer is the one the spec gives for that route and body."""
    requests = data.draw(st.lists(routed_requests(), min_size=1, max_size=3))
    for request in requests[1:]:  # a body behind a pipelined request meets a defect, pinned below
        request.body, request.framing, request.body_expectation, request.secret = b"", "none", None, None
    for request in requests:
        request.pieces = data.draw(st.sampled_from([1, 1, 2, 7]))
    exchange(vault, requests)
    count(len(requests) + 1)
    assert_serving(vault)


@FUZZ
@given(data=st.data())
def test_sealed_garbage_plaintexts_are_answered_in_an_envelope(vault, data):
    """Decrypted operations over HTTP: any plaintext sealed to the Vault's key gets 200 and a 4.2
    reply, a table-2 code on failure and never internal_server_error."""
    body, expectation, secret = data.draw(plaintexts.map(seal))
    path = data.draw(st.sampled_from([PUBLIC_KEY, SEED_PATH]))
    request = Request(b"POST", path.encode(), [(b"Content-Type", b"application/json")], body,
                      data.draw(st.sampled_from(["length", "chunked"])), body_expectation=expectation, secret=secret)
    exchange(vault, [request])
    count(2)
    assert_serving(vault)


@st.composite
def envelope_posts(draw):
    path = draw(st.sampled_from([PUBLIC_KEY, SEED_PATH]))
    body, expectation, secret = draw(envelope_bodies())
    framing = draw(st.sampled_from(["length", "length", "chunked"]))
    chunks = draw(st.lists(st.integers(1, 1 << 16), max_size=8)) if framing == "chunked" else []
    return Request(b"POST", path.encode(), draw(connection_headers), body, framing, chunks,
                   body_expectation=expectation, secret=secret)


@FUZZ
@given(request=envelope_posts(), pieces=st.sampled_from([1, 1, 3, 50]))
def test_envelope_bodies_get_their_documented_answer(vault, request, pieces):
    """Every kind of body on the envelope paths: the refusal of its kind (3.5, 4.3), or for a sealed
    one an envelope; never a quoted byte of it (4.4)."""
    request.pieces = pieces
    exchange(vault, [request])
    count(2)
    assert_serving(vault)


@FUZZ
@given(data=st.data())
def test_httpx_requests_get_their_documented_answer(vault, data):
    """The same oracle through an ordinary client on a kept-alive connection (httpx)."""
    request = data.draw(routed_requests())
    request.target = request.target.removeprefix(b"http://127.0.0.1")
    headers = [(k, v) for k, v in request.headers if all(c < 0x80 for c in v) and k.lower() != b"expect"]
    with httpx.Client(base_url=vault.url, timeout=READ_LIMIT) as client:
        for _ in range(2):  # the second on the kept-alive connection
            response = client.request(request.method.decode(), vault.url + request.target.decode(),
                                      headers=headers, content=request.body or None)
            sent = Request(request.method, response.request.url.raw_path, headers, request.body,
                           body_expectation=request.body_expectation, secret=request.secret)
            answer = Answer(response.status_code, b"", [(k.lower(), v) for k, v in response.headers.raw],
                            response.content)
            check_answer(sent, answer, allowed(sent))
            count()
    assert_serving(vault)


# Heads past 16 KiB, however they arrive, get 431 and a close (2.6); at or under it, the route.
@FUZZ
@given(size=st.integers(MAX_HEAD - 300, MAX_HEAD + 300) | st.integers(MAX_HEAD, 256 * 1024),
       split=st.sampled_from(["one", "many", "headers"]), path=st.sampled_from(DOCUMENTED_PATHS))
def test_heads_over_16_kib_get_431_and_close(vault, size, split, path):
    request = Request(b"GET", path.encode(), [], framing="none")
    fill = size - len(request.head())
    if split == "headers":  # many small headers
        request.headers = [(b"X-F%d" % i, b"v" * 90) for i in range(max(0, fill) // 100)]
    elif fill > len(b"X-Pad: \r\n"):
        request.headers = [(b"X-Pad", b"p" * (fill - len(b"X-Pad: \r\n")))]
    request.pieces = 1 if split == "one" else 16
    head_size = len(request.head())
    permitted = (lambda r: {(431, "headers_too_large")}) if head_size > MAX_HEAD else allowed
    answers = exchange(vault, [request], permitted=permitted)
    if head_size > MAX_HEAD:
        assert answers[0].closes, head_size
    count(2)
    assert_serving(vault)


# ---- framings the HTTP parser refuses or may refuse ------------------------------------------
MALFORMED_HEADS = [
    b"GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n", b"get /health HTTP/1.1\r\nHost: x\r\n\r\n",
    b"G@T /health HTTP/1.1\r\nHost: x\r\n\r\n", b" /health HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /hea\xffth HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /he alth HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", b"GET /health HTTP/1.9\r\nHost: x\r\n\r\n",
    b"GET /health FOO/1.1\r\nHost: x\r\n\r\n", b"GET /health HTTP/1.1 x\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/1.1\r\n\r\n", b"GET /health HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", b"GET /health HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-A : v\r\n\r\n", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", b"GET /health HTTP/1.1\nHost: x\n\n",
    b"GET /health HTTP/1.1\rHost: x\r\r", b"CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"TRACE /health HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /health HTTP/1.1\r\nHost: x\r\n\xff: v\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
    b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
]
CONTENT_LENGTHS = [b"-1", b"99999999999999999999999", b"abc", b"+5", b"0x10", b"5, 5", b"5,6", b"", b"1e3",
                   b"\xd9\xa5", b" 5", b"5 5"]


@st.composite
def malformed_requests(draw):
    """A request whose framing or head the parser may refuse: (bytes, the request it is read as)."""
    kind = draw(st.sampled_from(["head", "content-length", "duplicate-length", "chunks", "transfer-encoding",
                                 "both"]))
    path = draw(st.sampled_from([HEALTH, PUBLIC_KEY, SEED_PATH, "/nowhere"])).encode()
    method = draw(st.sampled_from([b"GET", b"POST"]))
    body = draw(st.sampled_from([b"", b"{}", b"hello", b'{"ephemeralPublicKey":1}']))
    head = method + b" " + path + b" HTTP/1.1\r\nHost: x\r\n"
    if kind == "head":
        raw = draw(st.sampled_from(MALFORMED_HEADS))
        return raw, Request(raw.split(b" ", 1)[0], raw.split(b" ")[1] if raw.count(b" ") > 1 else b"/", [],
                            framing="none")
    if kind == "content-length":
        value = draw(st.sampled_from(CONTENT_LENGTHS))
        raw = head + b"Content-Length: " + value + b"\r\n\r\n" + body
    elif kind == "duplicate-length":
        first, second = draw(st.sampled_from([(len(body), len(body)), (len(body), len(body) + 1), (0, len(body))]))
        raw = head + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (first, second) + body
    elif kind == "chunks":
        chunks = draw(st.sampled_from([b"zz\r\nab\r\n0\r\n\r\n", b"5\r\nab\r\n0\r\n\r\n", b"2\r\nabcd\r\n0\r\n\r\n",
                                       b"2\nab\n0\n\n", b"-2\r\nab\r\n0\r\n\r\n", b"2 ;x\r\nab\r\n0\r\n\r\n",
                                       b"ffffffffffffffffffffff\r\nab\r\n0\r\n\r\n",
                                       b"2;" + b"e" * 20000 + b"\r\nab\r\n0\r\n\r\n",
                                       b"2\r\nab0\r\n\r\n", b"0x2\r\nab\r\n0\r\n\r\n", b"2\r\nab\r\n0\r\nX: y\r\n",
                                       b"2\r\nab\r\n0\r\n\xff\r\n\r\n"]))
        raw = head + b"Transfer-Encoding: chunked\r\n\r\n" + chunks
    elif kind == "transfer-encoding":
        value = draw(st.sampled_from([b"gzip", b"gzip, chunked", b"chunked, gzip", b"chunked, chunked", b"identity",
                                      b"Chunked", b" chunked", b"chunked\x0b", b"xchunked"]))
        raw = head + b"Transfer-Encoding: " + value + b"\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    else:  # Content-Length with Transfer-Encoding: 400 bad_request and close (2.6)
        raw = head + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(body) + b"0\r\n\r\n"
    return raw, Request(method, path, [], body, framing="raw")


def malformed_permitted(request: Request) -> set:
    """A request the parser could read: the route's answer; else a 400 (bad_request is table 1's
    type for an HTTP request that cannot be read one way, 2.6), or the deadline's 408 for a head
    the parser is still waiting to see end (bare CRs)."""
    return allowed(request) | {(400, "bad_request"), (408, "request_timeout")}


def route_answer(request: Request, answer: Answer) -> bool:
    """Whether ``answer`` is one the route gives (as opposed to the parser's refusal)."""
    try:
        type_ = json.loads(answer.body)["error"]["type"] if answer.status != 200 else None
    except (ValueError, KeyError, TypeError):
        return False
    return (answer.status, type_) in allowed(request)


def judge_malformed(vault, raw: bytes, request: Request, *, shaped_400: bool) -> None:
    connection = Connection(vault)
    try:
        connection.send(raw, pieces=1)
        try:
            answer = connection.read_answer(request.method)
        except Closed:
            # the parser may wait for a body it reads as incomplete: closed at the deadline (2.6)
            return
        check_answer(request, answer, malformed_permitted(request), shaped_400=shaped_400)
        if answer.status == 400 and not route_answer(request, answer):
            assert answer.closes and connection.ends(), f"{raw[:120]!r}: a 400 for unreadable HTTP must close"
    finally:
        connection.close()


@FUZZ
@given(case=malformed_requests())
def test_malformed_framing_is_refused_or_read_one_way_and_the_vault_keeps_serving(vault, case):
    """Unparseable heads, bad Content-Length, malformed chunks, odd Transfer-Encoding: a 400 and a
    close, or the route's answer, or (a body still awaited) a close at the deadline. Relaxed: the
    400's body shape, see test_unparseable_http_gets_a_4_1_error."""
    raw, request = case
    judge_malformed(vault, raw, request, shaped_400=False)
    count(2)
    assert_serving(vault)


# ---- slow, partial and many clients -----------------------------------------------------------
def partial_permitted(request: Request, head_complete: bool, ending: str) -> set:
    """What a request cut short may get (2.6): before its head is in, only the deadline's 408 (or,
    for a client that shut down writing, a 400); once it is, the route's answer where the route
    does not need the body, but an envelope is never run on part of one (a 413 may come first)."""
    shut = {(400, "bad_request")} if ending == "shut" else set()
    if not head_complete:
        return {(408, "request_timeout")} | shut
    route = allowed(request)
    if request.method == b"POST" and route_path(request.target) in (PUBLIC_KEY, SEED_PATH):
        route = {(413, "payload_too_large")} if (413, "payload_too_large") in route else set()
    return route | shut


@settings(FUZZ, max_examples=max(5, EXAMPLES // 3))  # each example waits out a deadline
@given(data=st.data())
def test_slow_partial_and_abandoned_requests(vault, data):
    """Up to four clients at once, each sending a prefix of a request (some slowly), then stalling or
    closing: a stalled head gets 408 and a close at the deadline; a stalled body a close (2.6); the
    whole request sent slowly within the deadline gets its answer."""
    # half of them envelope posts, cut (often) after the head: those must never run
    cases = data.draw(st.lists(st.tuples(routed_requests() | envelope_posts(), st.floats(0, 1) | st.just(0.99),
                                         st.sampled_from(["stall", "shut", "whole"]),
                                         st.integers(1, 12)), min_size=1, max_size=4))
    outcomes: list = [None] * len(cases)

    def run(index, request, fraction, ending, pieces):
        raw = request.raw()
        try:
            if ending == "whole":
                request.pieces, request.pause = pieces, REQUEST_TIMEOUT / 4 / pieces
                exchange(vault, [request])
                outcomes[index] = "ok"
                return
            cut = min(len(raw) - 1, int(len(raw) * fraction))
            connection = Connection(vault)
            started = time.monotonic()
            connection.send(raw[:cut], pieces, REQUEST_TIMEOUT / 4 / pieces)
            if ending == "shut":
                try:
                    connection.sock.shutdown(socket.SHUT_WR)
                except OSError:  # the Vault closed first (a 431 or 413 already sent)
                    pass
            try:
                answer = connection.read_answer(request.method)
            except Closed:
                answer = None
            elapsed = time.monotonic() - started
            head_complete = b"\r\n\r\n" in raw[:cut]
            if answer is not None:
                check_answer(request, answer, partial_permitted(request, head_complete, ending),
                             shaped_400=False)
                if answer.status in (400, 408):
                    assert answer.closes, answer.headers
            if ending == "stall" and not head_complete:  # no request was running: 408 (2.6)
                assert answer is not None and answer.status == 408, ("no 408 for a stalled head", raw[:cut][-80:])
            if ending == "stall":
                assert connection.ends(), "a stalled request was not closed at the deadline"
                assert time.monotonic() - started < REQUEST_TIMEOUT + 2, elapsed
            connection.close()
            outcomes[index] = "ok"
        except BaseException as error:  # reported by the main thread
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i, *case)) for i, case in enumerate(cases)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(READ_LIMIT * 3)
    count(len(cases) + 1)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome == "ok", outcomes
    assert_serving(vault)


@FUZZ
@given(request=envelope_posts() | routed_requests())
def test_expect_100_continue_gets_100_then_the_answer_or_the_answer(vault, request):
    """A client that waits for 100 Continue before its body (RFC 9110 10.1.1): it gets the 100, then
    the answer to the whole request, or an answer at once (a route that needs no body)."""
    request.headers = [h for h in request.headers if h[0].lower() != b"expect"] + [(b"Expect", b"100-continue")]
    connection = Connection(vault)
    try:
        connection.send(request.head())
        connection.sock.settimeout(0.3)
        try:
            connection._fill()
        except (Hung, Closed):
            pass  # nothing yet: a server may also wait for the body
        connection.sock.settimeout(READ_LIMIT)
        if connection.buffer.startswith(b"HTTP/1.1 100"):
            connection.send(request.payload(), pieces=3)
        elif not connection.buffer:
            connection.send(request.payload())
        answer = connection.read_answer(request.method)
        check_answer(request, answer, allowed(request))
    finally:
        connection.close()
    count(2)
    assert_serving(vault)


@settings(FUZZ, max_examples=max(5, EXAMPLES // 4))  # those within the drain bound wait out a deadline
@given(declared=st.integers(MIB + 1, 32 * MIB) | st.integers(32 * MIB + 1, 1 << 62),
       sent=st.integers(1, 4096), path=st.sampled_from([PUBLIC_KEY, SEED_PATH]))
def test_a_body_declared_over_1_mib_is_never_run(vault, declared, sent, path):
    """Content-Length over the limit, a little of the body sent: past the drain bound 413 and a close
    at once; within it the Vault waits to discard the body, so a close at the deadline (2.6). (No
    byte of the body at all: test_a_head_declaring_over_32_mib_is_refused_at_once.)"""
    judge_declared(vault, declared, sent, path)


def judge_declared(vault, declared: int, sent: int, path: str) -> None:
    connection = Connection(vault)
    started = time.monotonic()
    try:
        connection.send(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (path.encode(), declared)
                        + b"{" * sent)
        try:
            answer = connection.read_answer(b"POST")
        except Closed:
            answer = None
        elapsed = time.monotonic() - started
        request = Request(b"POST", path.encode(), [], b"{" * sent)
        if answer is None:
            assert declared <= 32 * MIB and elapsed < REQUEST_TIMEOUT + 2, (declared, elapsed)
        else:
            check_answer(request, answer, {(413, "payload_too_large")})
            assert answer.closes and connection.ends()
            if declared > 32 * MIB:
                assert elapsed < REQUEST_TIMEOUT / 2, elapsed  # at once, not at the deadline
    finally:
        connection.close()
    count(2)
    assert_serving(vault)


def test_connections_over_the_cap_are_closed_at_once_and_the_vault_recovers(capped_vault):
    """Idle connections beyond the cap (descriptor limit minus the reserve, 2.6) are closed at once,
    so the server's descriptors stay bounded; once the held ones go, it serves again."""
    vault = capped_vault
    baseline = vault.open_descriptors()
    held, extra = [], []
    for index in range(CONNECTION_CAP + 32):
        sock = socket.create_connection(("127.0.0.1", vault.port), timeout=READ_LIMIT)
        (held if index < CONNECTION_CAP else extra).append(sock)
        if index % 16 == 15:
            time.sleep(0.05)  # let accept() keep up: the backlog is the accept burst (64)
    time.sleep(0.5)
    assert vault.open_descriptors() <= baseline + CONNECTION_CAP + 1, (baseline, vault.open_descriptors())
    refused = 0
    for sock in extra:
        sock.settimeout(1)
        try:
            refused += sock.recv(1) == b""
        except ConnectionResetError:
            refused += 1
        except socket.timeout:
            pass
    assert refused == len(extra), f"{refused} of {len(extra)} connections over the cap were closed"
    vault.sent += len(held) + len(extra)
    for sock in held + extra:
        sock.close()
    deadline = time.monotonic() + 5
    while vault.open_descriptors() > baseline + DESCRIPTOR_SLACK and time.monotonic() < deadline:
        time.sleep(0.1)
    assert vault.open_descriptors() <= baseline + DESCRIPTOR_SLACK, (baseline, vault.open_descriptors())
    assert_serving(vault)


# ---- defects the fuzzer found, each a minimal reproduction: fixed ones stay as regression tests;
# the xfails left are strict where deterministic (they pass once the reference is fixed) ---
@pytest.mark.parametrize("raw", [b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                                 b"POST /api/v1/enclave HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 b"zz\r\n"])
def test_unparseable_http_gets_a_4_1_error(vault, raw):
    judge_malformed(vault, raw, Request(raw.split(b" ")[0], raw.split(b" ")[1], [], framing="raw"), shaped_400=True)


@pytest.mark.parametrize("handshake", [
    [(b"Upgrade", b"websocket"), (b"Connection", b"upgrade")],
    [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"), (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
     (b"Sec-WebSocket-Version", b"13")],
], ids=["incomplete", "complete"])
def test_a_websocket_upgrade_header_does_not_change_the_answer(vault, handshake):
    exchange(vault, [Request(b"GET", b"/health", handshake, framing="none")])


def test_a_head_declaring_over_32_mib_is_refused_at_once(vault):
    judge_declared(vault, 32 * MIB + 1, 0, PUBLIC_KEY)


@pytest.mark.parametrize("target", [b"/api%2Fv1%2Fenclave", b"/%68ealth"])
def test_percent_encoded_documented_paths_are_other_paths(vault, target):
    exchange(vault, [Request(b"GET", target, [], framing="none")])


def test_the_absolute_form_is_routed_on_its_path(vault, request):
    if vault.http == "h11":
        request.applymarker(pytest.mark.xfail(strict=True, reason="with --http h11 the edge routes on the whole "
                                              "absolute-form target: GET http://host/health gets 404"))
    exchange(vault, [Request(b"GET", b"http://127.0.0.1/health", [], framing="none")])


# Not strict: how the bytes are cut into reads decides whether the 431 shows, and a loaded machine
# may cut them otherwise ten times running.
@pytest.mark.xfail(strict=False, reason="pipelined behind a request whose body the app did not read, a request "
                   "with 'Connection: close' gets the edge's 431 instead of its answer once a large body "
                   "follows it on the connection: the edge counts bytes after a finished request as a head")
def test_a_pipelined_request_is_answered_not_refused_by_the_head_limit(vault):
    ignored = Request(b"PUT", DEV_ROOT.encode(), [], b"a" * 600)  # 405 without reading the body
    closing = Request(b"POST", b"/nowhere", [(b"Connection", b"close")], b"b" * 400)
    following = Request(b"PATCH", b"/elsewhere", [], b"{" * 3_000_000)
    for _ in range(10):  # the 431 depends on how the bytes are cut into reads: most tries show it
        connection = Connection(vault)
        try:
            connection.send(ignored.raw() + closing.raw())
            connection.send(following.raw(), pieces=7)
            check_answer(ignored, connection.read_answer(b"PUT"), allowed(ignored))
            check_answer(closing, connection.read_answer(b"POST"), allowed(closing))
        finally:
            connection.close()


def test_a_malformed_chunk_on_a_route_that_ignores_the_body_logs_no_traceback(vault):
    before = vault.log().count("Traceback")
    raw = b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n"
    judge_malformed(vault, raw, Request(b"GET", b"/health", [], framing="raw"), shaped_400=False)
    time.sleep(0.2)
    assert vault.log().count("Traceback") == before, vault.log()[-3000:]


# ---- last: what the run cost the server -------------------------------------------------------
def test_resources_stayed_bounded_and_the_log_is_clean(vault):
    """Runs last in the module: RSS growth and descriptors against the first reading of the run."""
    deadline = time.monotonic() + IDLE_TIMEOUT + REQUEST_TIMEOUT + 2
    while vault.open_descriptors() > vault.baseline_descriptors + DESCRIPTOR_SLACK and time.monotonic() < deadline:
        time.sleep(0.2)
    descriptors, rss = vault.open_descriptors(), vault.rss_bytes()
    print(f"\n{vault.http}: {vault.sent} requests; RSS {vault.baseline_rss >> 20} -> {rss >> 20} MiB; "
          f"descriptors {vault.baseline_descriptors} -> {descriptors}")
    assert descriptors <= vault.baseline_descriptors + DESCRIPTOR_SLACK
    assert rss - vault.baseline_rss < RSS_GROWTH_BOUND
    assert "Traceback" not in vault.log()
    assert_serving(vault)
