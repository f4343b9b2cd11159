"""Bounds inside the host and the enclave's framing server (docs/spec/02-endpoints.md 2.6), in-process."""

from __future__ import annotations

import asyncio


from reference import framing
from reference.enclave import server as enclave_server
from reference.host.app import MAX_ATTESTATIONS_IN_FLIGHT, HostApp


class SlowTransport:
    """Answers every message after a pause, counting how many it holds at once."""

    def __init__(self):
        self.held = self.most = 0

    async def request(self, kind, body):
        self.held += 1
        self.most = max(self.most, self.held)
        await asyncio.sleep(0.2)
        self.held -= 1
        return 200, b"{}"


async def get(app, path, query=b""):
    scope = {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": []}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], dict(sent[0]["headers"])


def test_attestations_in_flight_are_bounded_and_the_rest_told_to_retry():
    transport = SlowTransport()
    app = HostApp(transport)

    async def burst():
        return await asyncio.gather(*(get(app, "/api/v1/enclave/attestation", b"nonce=00") for _ in range(12)))

    answers = asyncio.run(burst())
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * MAX_ATTESTATIONS_IN_FLIGHT + [503] * (12 - MAX_ATTESTATIONS_IN_FLIGHT)
    assert transport.most == MAX_ATTESTATIONS_IN_FLIGHT
    assert all(headers.get(b"retry-after") == b"1" for status, headers in answers if status == 503)
    # the bound is on what is in flight, not a budget: afterwards attestations are served again
    assert asyncio.run(get(app, "/api/v1/enclave/attestation", b"nonce=00"))[0] == 200


class Echo:
    def handle_message(self, kind, body):
        return 200, body


async def serving(**kwargs):
    started = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(enclave_server.serve(Echo(), "tcp:127.0.0.1:0", ready=started.set_result, **kwargs))
    server = await started
    return task, server.sockets[0].getsockname()[1]


def test_a_partial_frame_is_dropped_after_the_frame_deadline_and_idle_links_are_kept():
    async def go():
        task, port = await serving(frame_timeout=0.3)
        try:
            _, idle = await asyncio.open_connection("127.0.0.1", port)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            frame = framing.encode_request("envelope", b"x" * 1000)
            writer.write(frame[:-10])  # ten bytes short, and then nothing
            await writer.drain()
            closed = await asyncio.wait_for(reader.read(), 3)  # EOF: the enclave dropped it
            await asyncio.sleep(0.5)
            # the idle connection (no byte of a frame yet) is still served
            idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
            idle_writer.write(framing.encode_request("envelope", b"ok"))
            await idle_writer.drain()
            answer = await asyncio.wait_for(framing.read_reply(idle_reader), 3)
            return closed, answer
        finally:
            task.cancel()

    closed, answer = asyncio.run(go())
    assert closed == b"" and answer == (200, b"ok")


def test_connections_beyond_the_cap_are_refused():
    async def go():
        task, port = await serving(max_connections=2)
        try:
            kept = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
            await asyncio.sleep(0.1)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            refused = await asyncio.wait_for(reader.read(), 3)
            kept[0][1].write(framing.encode_request("envelope", b"still"))
            return refused, await asyncio.wait_for(framing.read_reply(kept[0][0]), 3)
        finally:
            task.cancel()

    refused, answer = asyncio.run(go())
    assert refused == b"" and answer == (200, b"still")
