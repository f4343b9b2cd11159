"""ASGI apps and launchers for bench/bench_ping.py.

* ``TrivialApp``: answers a POST by reading its whole body and replying with a canned body chosen
  by the body's length (a real encrypted reply of the operation whose requests have that size, so
  the reply has the same size and headers as the Vault's, and the requests can be byte for byte
  the Vault's, path included). Its time per request, t_post, is what the HTTP server and the
  ASGI call cost for a request of that size, with no Vault work at all.
* Run as a script, it serves ``TrivialApp`` through the reference's own uvicorn launcher
  (``reference.cli._run_http``): the same protocol class, edge limits and uvicorn settings as
  ``vault-reference serve``.
* ``granian_reference`` / ``granian_trivial``: factories for granian (``--factory``), which
  imports the app itself; the reference is built exactly as ``vault-reference serve`` builds it.

Configuration for the factories comes from the environment: ``VAULT_DATA_DIR`` (the reference's
own variable) and ``VAULT_BENCH_REPLIES`` (a JSON file ``{request body length: reply}``).
"""

from __future__ import annotations

import argparse
import json
import os

REPLIES_ENV = "VAULT_BENCH_REPLIES"


class TrivialApp:
    def __init__(self, replies: dict[int, bytes]):
        self.replies = replies

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        # Read the whole body, as the Vault must before it can open the envelope.
        more, size = True, 0
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        body = self.replies.get(size)
        status = 200 if body is not None and scope["method"] == "POST" else 404
        body = body if status == 200 else b'{"error":"not_found"}'
        # The headers the reference's host app sends (reference/host/app.py).
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def load_replies(path: str) -> dict[int, bytes]:
    with open(path) as file:
        return {int(size): reply.encode() for size, reply in json.load(file).items()}


def granian_trivial():
    return TrivialApp(load_replies(os.environ[REPLIES_ENV]))


def granian_reference():
    from reference.cli import build_app
    from reference.config import Config

    return build_app(Config.from_env())


def main() -> None:
    parser = argparse.ArgumentParser(description="serve TrivialApp with the reference's uvicorn launcher")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--replies", required=True, help="JSON file {request body length: reply body}")
    parser.add_argument("--http", default="auto")
    parser.add_argument("--loop", default="auto")
    args = parser.parse_args()

    from reference.cli import _run_http
    from reference.config import Config

    _run_http(TrivialApp(load_replies(args.replies)), Config(host="127.0.0.1", port=args.port),
              http=args.http, loop=args.loop)


if __name__ == "__main__":
    main()
