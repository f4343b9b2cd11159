"""A tiny Vault that speaks just enough for the `kms/*` checks: GET /api/v1/enclave, the envelope
(spec §3, written here with PyNaCl so it shares no code with the harness's client), ``ping`` and
``enclave:keyPolicy`` (spec §11.6.1), with documents signed by a test PKI.

``mode`` makes it misbehave in one named way, so each check can be watched failing:
``good``, ``wrong-digest`` (policySha384 of other bytes), ``substituted`` (a host swapped the
policy and its digest; the document still binds the original), ``other-hash`` (the document
binds another policy hash), ``hole`` (a consistent, attested policy that is not enclave-locked),
``unknown`` (answers unknown_operation), ``no-document`` (ignores the nonce).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import nacl.bindings as sodium
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from harness.attestation import AttestationPayload, encode_payload
from harness.attestation.testpki import TestPki, sign_payload

KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PCRS = {0: hashlib.sha384(b"fake vault image").digest(), 1: hashlib.sha384(b"kernel").digest(),
        2: hashlib.sha384(b"application").digest(), 8: hashlib.sha384(b"signer").digest()}
# Written the way a person writes it (spacing, upper-case hex): the Vault must not re-serialise.
LOCKED_POLICY = (
    '{\n  "Version": "2012-10-17",\n  "Statement": [\n'
    '    {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/admin"},\n'
    '     "Action": ["kms:Create*", "kms:Describe*", "kms:Get*", "kms:List*", "kms:Put*"], "Resource": "*"},\n'
    '    {"Sid": "EnclaveOnly", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/enclave-parent"},\n'
    '     "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",\n'
    '     "Condition": {"StringEqualsIgnoreCase": {"kms:RecipientAttestation:PCR0": "%s"}}}\n  ]\n}\n'
) % PCRS[0].hex().upper()
HOLE_POLICY = ('{"Version":"2012-10-17","Statement":[{"Sid":"EnableIAM","Effect":"Allow",'
               '"Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}')
USER_DATA_DOMAIN = b"vault-reference/key-policy/v1\x00"
MODES = ("good", "wrong-digest", "substituted", "other-hash", "hole", "unknown", "no-document")


def _key(secret: bytes, peer: bytes) -> bytes:
    shared = sodium.crypto_scalarmult(secret, peer)
    return HKDF(hashes.SHA256(), 32, None, b"encryption").derive(shared)


def _sha384(text: str) -> bytes:
    return hashlib.sha384(text.encode("utf-8")).digest()


class FakeVault:
    def __init__(self, mode: str = "good"):
        assert mode in MODES, mode
        self.mode = mode
        self.pki = TestPki.generate()
        self.secret = os.urandom(32)
        self.public = sodium.crypto_scalarmult_base(self.secret)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeVault":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- the operation --------------------------------------------------------------------
    def document(self, nonce: bytes, user_data: bytes) -> bytes:
        payload = AttestationPayload(
            module_id="i-0fake0000000000000-enc0000000000000000", digest="SHA384",
            timestamp=int(self.pki.now.timestamp() * 1000), pcrs=PCRS, certificate=self.pki.leaf_der,
            cabundle=tuple(self.pki.cabundle), public_key=self.public, user_data=user_data, nonce=nonce)
        return sign_payload(encode_payload(payload), self.pki.leaf_key)

    def key_policy(self, options: dict) -> dict:
        policy = HOLE_POLICY if self.mode == "hole" else LOCKED_POLICY
        bound_hash = _sha384(policy)  # what the enclave read from KMS and attests
        served = policy
        digest = bound_hash.hex()
        if self.mode == "wrong-digest":
            digest = _sha384(policy + " ").hex()
        elif self.mode == "substituted":  # the host replaced policy and digest in transit
            served = HOLE_POLICY
            digest = _sha384(HOLE_POLICY).hex()
        elif self.mode == "other-hash":
            bound_hash = _sha384(HOLE_POLICY)
        data = {"keyArn": KEY_ARN, "policy": served, "policySha384": digest}
        nonce = options.get("nonce")
        if nonce is not None and self.mode != "no-document":
            user_data = hashlib.sha384(USER_DATA_DOMAIN + KEY_ARN.encode() + b"\x00" + bound_hash).digest()
            data["attestationDocument"] = base64.b64encode(self.document(bytes.fromhex(nonce), user_data)).decode()
        return data

    def reply(self, request: dict) -> dict:
        operation = request.get("operation")
        options = request.get("options") or {}
        if operation == "ping":
            return {"success": True, "data": {"pong": options.get("message"), "timestamp": "2026-12-02T00:00:00Z"},
                    "error": None}
        if operation == "enclave:keyPolicy" and self.mode != "unknown":
            nonce = options.get("nonce")
            if nonce is not None and not (isinstance(nonce, str) and len(nonce) % 2 == 0 and len(nonce) <= 1024
                                          and all(c in "0123456789abcdefABCDEF" for c in nonce)):
                return {"success": False, "data": None, "error": {"code": "invalid_options", "message": "bad nonce"}}
            return {"success": True, "data": self.key_policy(options), "error": None}
        return {"success": False, "data": None, "error": {"code": "unknown_operation", "message": str(operation)}}

    # ---- HTTP and the envelope --------------------------------------------------------------
    def _handler(self):
        vault = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                if self.path.split("?")[0] == "/api/v1/enclave":
                    self._send(200, {"publicKey": vault.public.hex()})
                else:
                    self._send(404, {"error": {"type": "not_found", "message": "no such path", "status": 404}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                client = bytes.fromhex(body["ephemeralPublicKey"])
                plaintext = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                    bytes.fromhex(body["ciphertext"]), None, bytes.fromhex(body["nonce"]), _key(vault.secret, client))
                reply = json.dumps(vault.reply(json.loads(plaintext))).encode()
                e_s, nonce = os.urandom(32), os.urandom(24)
                ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(reply, None, nonce, _key(e_s, client))
                self._send(200, {"ephemeralPublicKey": sodium.crypto_scalarmult_base(e_s).hex(), "nonce": nonce.hex(),
                                 "ciphertext": ciphertext.hex()})

        return Handler
