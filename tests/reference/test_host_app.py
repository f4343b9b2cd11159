"""The host's body handling (spec §2, §3.5): what it forwards, and what it refuses before forwarding."""

import asyncio
import json

import pytest

from reference.host.app import HostApp

LIMIT = 1000


class RecordingTransport:
    def __init__(self):
        self.calls = []

    async def request(self, kind, body):
        self.calls.append((kind, body))
        return 200, b'{"ok":true}'


def post(messages, headers=()):
    """POST /api/v1/enclave with the given ASGI body messages; (status, body, forwarded, receives)."""
    transport = RecordingTransport()
    app = HostApp(transport, max_body=LIMIT)
    pending, sent, receives = list(messages), [], []

    async def receive():
        receives.append(1)
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "path": "/api/v1/enclave", "method": "POST", "headers": list(headers)}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], sent[1]["body"], transport.calls, len(receives)


def body(data, more=False):
    return {"type": "http.request", "body": data, "more_body": more}


def test_a_whole_body_is_forwarded_as_is():
    status, _, forwarded, receives = post([body(b"x" * LIMIT)])
    assert (status, forwarded, receives) == (200, [("envelope", b"x" * LIMIT)], 1)


def test_a_body_in_chunks_is_joined():
    status, _, forwarded, _ = post([body(b"ab", True), body(b"cd", True), body(b"e")])
    assert (status, forwarded) == (200, [("envelope", b"abcde")])


@pytest.mark.parametrize("messages", [
    [body(b"x" * (LIMIT + 1))],  # one message, as uvicorn gives a body that arrived whole
    [body(b"x" * 600, True), body(b"x" * 600)],
    [body(b"x" * (LIMIT + 1), True), body(b"")],
])
def test_an_oversized_body_is_refused_and_not_forwarded(messages):
    status, answer, forwarded, _ = post(messages)
    assert status == 413 and forwarded == []
    assert json.loads(answer)["error"]["type"] == "payload_too_large"


def test_a_declared_oversized_body_is_drained_then_refused():
    # read to its end first, so a client or proxy still sending does not lose the 413 to a reset
    status, _, forwarded, receives = post([body(b"x" * 10, True), body(b"x" * 10)],
                                          headers=[(b"content-length", b"%d" % (LIMIT + 1))])
    assert (status, forwarded, receives) == (413, [], 2)


def test_a_body_declared_beyond_the_drain_bound_is_refused_before_any_of_it_is_read():
    from reference.host.app import MAX_DRAIN_BYTES

    status, _, forwarded, receives = post([body(b"x" * 10, True), body(b"x" * 10)],
                                          headers=[(b"content-length", b"%d" % (MAX_DRAIN_BYTES + 1))])
    assert (status, forwarded, receives) == (413, [], 0)
