"""ASGI apps and launchers for bench/bench_ping.py.

* ``TrivialApp``: answers a POST by reading its whole body and replying with a canned body chosen
  by the body's length (a real encrypted reply of the operation whose requests have that size, so
  the reply has the same size and headers as the Vault's, and the requests can be byte for byte
  the Vault's, path included). Its time per request, t_post, is what the HTTP server and the
  ASGI call cost for a request of that size, with no Vault work at all.
* ``CRYPTO_ONLY_PATH`` on the same app: the ping's ceiling on this stack. It parses the envelope
  (orjson), runs the request's seven primitives exactly as the reference calls them, and seals a
  constant reply: the same protocol with no validation, no operation, no error handling. Its
  rate against ``1/(t_post + t_crypto)`` is the most any Vault code could reach on this stack.
* Run as a script, it serves ``TrivialApp`` through the reference's own uvicorn launcher
  (``reference.cli._run_http``): the same protocol class, edge limits and uvicorn settings as
  ``vault-reference serve``.
* ``granian_reference`` / ``granian_trivial``: factories for granian (``--factory``), which
  imports the app itself; the reference is built exactly as ``vault-reference serve`` builds it.

Configuration for the factories comes from the environment: ``VAULT_DATA_DIR`` (the reference's
own variable) and ``VAULT_BENCH_REPLIES`` (the JSON file of ``load_app``).
"""

from __future__ import annotations

import argparse
import json
import os

import nacl.bindings as sodium
import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

REPLIES_ENV = "VAULT_BENCH_REPLIES"
CRYPTO_ONLY_PATH = "/bench/crypto-only"


class TrivialApp:
    def __init__(self, replies: dict[int, bytes], crypto_secret: bytes, crypto_reply: bytes):
        self.replies = replies
        self.crypto_secret = crypto_secret
        self.crypto_reply = crypto_reply

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
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        request = b"".join(chunks)
        if scope["path"] == CRYPTO_ONLY_PATH:
            body = self.crypto_only(request)
        else:
            body = self.replies.get(len(request))
        status = 200 if body is not None and scope["method"] == "POST" else 404
        body = body if status == 200 else b'{"error":"not_found"}'
        # The headers the reference's host app sends (reference/host/app.py).
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


    def crypto_only(self, body: bytes) -> bytes:
        request = orjson.loads(body)
        client_public = bytes.fromhex(request["ephemeralPublicKey"])
        key = _hkdf(sodium.crypto_scalarmult(self.crypto_secret, client_public))
        sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(bytes.fromhex(request["ciphertext"]), None,
                                                           bytes.fromhex(request["nonce"]), key)
        reply_secret, nonce = os.urandom(32), os.urandom(24)
        key = _hkdf(sodium.crypto_scalarmult(reply_secret, client_public))
        ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(self.crypto_reply, None, nonce, key)
        return b'{"ephemeralPublicKey":"%s","nonce":"%s","ciphertext":"%s"}' % (
            sodium.crypto_scalarmult_base(reply_secret).hex().encode(), nonce.hex().encode(), ciphertext.hex().encode())


def _hkdf(shared: bytes) -> bytes:
    # As the reference derives its keys (reference/enclave/envelope.py).
    return HKDF(hashes.SHA256(), 32, None, b"encryption").derive(shared)


def load_app(path: str) -> TrivialApp:
    """The JSON file: ``{"replies": {length: reply}, "crypto_secret": hex, "crypto_reply": hex}``."""
    with open(path) as file:
        config = json.load(file)
    replies = {int(size): reply.encode() for size, reply in config["replies"].items()}
    return TrivialApp(replies, bytes.fromhex(config["crypto_secret"]), bytes.fromhex(config["crypto_reply"]))


def granian_trivial():
    return load_app(os.environ[REPLIES_ENV])


def granian_reference():
    from reference.cli import build_app
    from reference.config import Config

    return build_app(Config.from_env())


def main() -> None:
    parser = argparse.ArgumentParser(description="serve TrivialApp with the reference's uvicorn launcher")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--replies", required=True, help="JSON file, see load_app")
    parser.add_argument("--http", default="auto")
    parser.add_argument("--loop", default="auto")
    args = parser.parse_args()

    from reference.cli import _run_http
    from reference.config import Config

    _run_http(load_app(args.replies), Config(host="127.0.0.1", port=args.port),
              http=args.http, loop=args.loop)


if __name__ == "__main__":
    main()
