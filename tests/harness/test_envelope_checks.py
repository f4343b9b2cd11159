"""The envelope, freshness, shape and message checks FAIL a Vault with one defect, and pass the reference.

Each test runs the real reference in this process (a uvicorn thread), breaks one behaviour with
monkeypatch, and runs the named harness check against it over HTTP. The harness itself never
imports the reference; only this test does, to build the broken variants.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time

import nacl.bindings as sodium
import nacl.exceptions
import pytest
import uvicorn

from harness import runner
from harness.protocol.client import VaultClient
from harness.suites import envelope as faults
from harness.suites.registry import Context, Verdict, all_checks
from tests.conftest import free_port

CHECKS = {c.id: c for c in all_checks()}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from reference import cli
    from reference.config import Config

    app = cli.build_app(Config(data_dir=tmp_path_factory.mktemp("vault")))
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    while not uv.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    uv.should_exit = True
    thread.join(10)


def verdict(server, check_id: str) -> runner.Result:
    url, _ = server
    client = VaultClient(url)
    try:
        return runner.run_check(CHECKS[check_id], Context(url, client, {"examples": 5}))
    finally:
        client.close()


ALL_NEW = ["envelope/vector-faults", "envelope/hex-case-accepted", "envelope/hex-syntax-rejected",
           "envelope/json-syntax-rejected", "envelope/duplicate-members-rejected", "envelope/lengths-rejected",
           "envelope/body-limit", "envelope/forgeries-rejected", "envelope/forgeries-indistinguishable",
           "envelope/run-response-members", "errors/low-order-key", "errors/malformed-rejected",
           "errors/run-unencrypted-shape", "errors/run-reply-members", "errors/run-messages",
           "e2e/run-freshness", "e2e/replay-fresh-reply", "e2e/run-content-types", "e2e/routing"]


@pytest.mark.parametrize("check_id", ALL_NEW)
def test_the_reference_passes(server, check_id):
    result = verdict(server, check_id)
    assert result.verdict is Verdict.OK, (result.message, result.actual)


def _failed(server, check_id):
    result = verdict(server, check_id)
    assert result.verdict is Verdict.FAILED, (result.verdict, result.message)
    return result


# ---- the parser ------------------------------------------------------------------------------

def test_lenient_hex_decoder_fails_hex_syntax(server, monkeypatch):
    from reference.enclave import envelope as ref

    def fromhex_skipping_whitespace(text):  # bytes.fromhex skips ASCII whitespace
        try:
            return bytes.fromhex(text)
        except ValueError:
            return None
    monkeypatch.setattr(ref, "unhex", fromhex_skipping_whitespace)
    _failed(server, "envelope/hex-syntax-rejected")


def test_int_based_hex_decoder_with_0x_fails_hex_syntax(server, monkeypatch):
    from reference.enclave import envelope as ref
    original = ref.unhex
    monkeypatch.setattr(ref, "unhex", lambda text: original(text[2:] if text[:2] in ("0x", "0X") else text))
    result = _failed(server, "envelope/hex-syntax-rejected")
    assert "0x" in json.dumps(result.actual)


def test_lowercase_only_hex_fails_hex_case(server, monkeypatch):
    from reference.enclave import envelope as ref
    original = ref.unhex
    monkeypatch.setattr(ref, "unhex", lambda text: original(text) if text == text.lower() else None)
    _failed(server, "envelope/hex-case-accepted")
    _failed(server, "envelope/vector-faults")  # the vectors' uppercase cases are MUST-accept


@pytest.mark.parametrize("wins", ["first", "last"])
def test_duplicate_members_accepted_fails(server, monkeypatch, wins):
    from reference.enclave import envelope as ref

    def parse(body):
        pairs_hook = (lambda pairs: dict(reversed(pairs))) if wins == "first" else None
        try:
            obj = json.loads(body, object_pairs_hook=pairs_hook)
        except ValueError:
            raise ref.EnvelopeError(ref.EnvelopeCode.INVALID_JSON, "bad json") from None
        return ref.Envelope.from_json(obj)
    monkeypatch.setattr(ref, "parse_body", parse)
    _failed(server, "envelope/duplicate-members-rejected")


def test_trailing_bytes_accepted_fails_json_syntax(server, monkeypatch):
    from reference.enclave import envelope as ref

    def parse(body):  # raw_decode stops after the first value and ignores the rest
        try:
            obj, _ = json.JSONDecoder().raw_decode(body.decode("utf-8", "replace").strip("\x0b\x0c\x00 "))
        except ValueError:
            raise ref.EnvelopeError(ref.EnvelopeCode.INVALID_JSON, "bad json") from None
        return ref.Envelope.from_json(obj)
    monkeypatch.setattr(ref, "parse_body", parse)
    _failed(server, "envelope/json-syntax-rejected")
    _failed(server, "envelope/vector-faults")  # tcId 4 and 5 decrypt now


def test_zero_padded_nonce_fails_lengths(server, monkeypatch):
    from reference.enclave import envelope as ref
    original = ref.Envelope.from_json.__func__

    def padding(cls, obj):
        if isinstance(obj, dict) and isinstance(obj.get("nonce"), str) and len(obj["nonce"]) < 48:
            obj = {**obj, "nonce": obj["nonce"].ljust(48, "0")}
        return original(cls, obj)
    monkeypatch.setattr(ref.Envelope, "from_json", classmethod(padding))
    _failed(server, "envelope/lengths-rejected")


def test_truncated_key_fails_lengths(server, monkeypatch):
    from reference.enclave import envelope as ref
    original = ref.Envelope.from_json.__func__

    def truncating(cls, obj):
        if isinstance(obj, dict) and isinstance(obj.get("ephemeralPublicKey"), str):
            obj = {**obj, "ephemeralPublicKey": obj["ephemeralPublicKey"][:64]}
        return original(cls, obj)
    monkeypatch.setattr(ref.Envelope, "from_json", classmethod(truncating))
    _failed(server, "envelope/lengths-rejected")


def test_limit_one_byte_too_small_fails_body_limit(server, monkeypatch):
    _, app = server
    monkeypatch.setattr(app, "max_body", (1 << 20) - 1)
    _failed(server, "envelope/body-limit")


def test_limit_one_byte_too_large_fails_body_limit(server, monkeypatch):
    from reference.enclave import envelope as ref
    _, app = server
    monkeypatch.setattr(app, "max_body", (1 << 20) + 1)
    monkeypatch.setattr(ref, "MAX_BODY_BYTES", (1 << 20) + 1)
    _failed(server, "envelope/body-limit")


def test_skipped_low_order_check_fails_low_order_key(server, monkeypatch):
    from reference.enclave import envelope as ref
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    def derive_without_check(secret, peer):
        try:
            shared = sodium.crypto_scalarmult(secret, peer)
        except nacl.exceptions.RuntimeError:
            shared = bytes(32)  # the defect: an all-zero shared secret is used
        return HKDF(hashes.SHA256(), 32, None, b"encryption").derive(shared)
    monkeypatch.setattr(ref, "_derive_key", derive_without_check)
    result = _failed(server, "errors/low-order-key")
    assert "accepted" in result.message


def test_decryption_failure_that_says_where_fails_indistinguishable(server, monkeypatch):
    from reference.enclave import envelope as ref
    original = ref.open_envelope

    def telling(sealed, secret):
        try:
            return original(sealed, secret)
        except ref.EnvelopeError:
            raise ref.EnvelopeError(ref.EnvelopeCode.DECRYPTION_FAILED, f"tag check failed ({len(sealed.ciphertext)} bytes)")
    monkeypatch.setattr(ref, "open_envelope", telling)
    _failed(server, "envelope/forgeries-indistinguishable")


def test_unauthenticated_decrypt_fails_forgeries(server, monkeypatch):
    from reference.enclave import envelope as ref
    original = ref.open_envelope

    def raw_secret_too(sealed, secret):  # the defect: also tries the raw shared secret as the key
        try:
            return original(sealed, secret)
        except ref.EnvelopeError:
            shared = sodium.crypto_scalarmult(secret, sealed.ephemeral_public_key)
            return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(sealed.ciphertext, None, sealed.nonce, shared)
    monkeypatch.setattr(ref, "open_envelope", raw_secret_too)
    _failed(server, "envelope/forgeries-rejected")


# ---- freshness -------------------------------------------------------------------------------

def test_reply_key_derived_from_the_request_fails_freshness(server, monkeypatch):
    from reference.enclave import envelope as ref
    original_init = ref.ReplySealer.__init__

    def derived(self, client_public, random_bytes):
        stream = hashlib.sha512(client_public).digest()  # the defect: e_s and nonce from E_c
        original_init(self, client_public, lambda n, s=iter([stream[:32], stream[32:56]]): next(s))
    monkeypatch.setattr(ref.ReplySealer, "__init__", derived)
    _failed(server, "e2e/replay-fresh-reply")
    _failed(server, "e2e/run-freshness")


def test_error_replies_with_one_fixed_key_fail_run_freshness(server, monkeypatch):
    from reference.enclave import envelope as ref
    original = ref.ReplySealer
    fixed_secret, fixed_nonce = bytes(range(1, 33)), bytes(24)

    class FixedForErrors:  # the defect: every error reply is sealed with one key and nonce
        def __init__(self, client_public, random_bytes):
            self.inner, self.client_public = original(client_public, random_bytes), client_public

        def seal(self, plaintext):
            if b'"success":false' not in plaintext:
                return self.inner.seal(plaintext)
            key = ref._derive_key(fixed_secret, self.client_public)
            return ref.Envelope(ref.public_key(fixed_secret), fixed_nonce,
                                sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, None, fixed_nonce, key))
    monkeypatch.setattr(ref, "ReplySealer", FixedForErrors)
    result = _failed(server, "e2e/run-freshness")
    assert "repeats" in json.dumps(result.actual)
    # Successes stay fresh, so the sample of successful pings alone does not see it.
    assert verdict(server, "e2e/response-fresh-key").verdict is Verdict.OK


# ---- shapes, content types, routing, messages -------------------------------------------------

def test_extra_reply_member_fails_run_reply_members(server, monkeypatch):
    from reference.enclave import service
    original = service.encode_reply
    monkeypatch.setattr(service, "encode_reply", lambda result: original({**result, "version": 1}))
    _failed(server, "errors/run-reply-members")


def test_extra_response_envelope_member_fails(server, monkeypatch):
    from reference.enclave import envelope as ref
    original = ref.Envelope.to_bytes
    monkeypatch.setattr(ref.Envelope, "to_bytes", lambda self: original(self)[:-1] + b',"v":1}')
    _failed(server, "envelope/run-response-members")


def test_extra_unencrypted_error_member_fails(server, monkeypatch):
    from reference.enclave import errors
    original = errors.EnvelopeError.to_json
    monkeypatch.setattr(errors.EnvelopeError, "to_json", lambda self: {**original(self), "ok": False})
    _failed(server, "errors/run-unencrypted-shape")
    _failed(server, "errors/unencrypted-shape")
    _failed(server, "e2e/tampered-ciphertext")  # every expected refusal is read exactly now


def test_wrong_content_type_fails(server, monkeypatch):
    from reference.host import app
    monkeypatch.setattr(app, "_JSON", [(b"content-type", b"text/plain")])
    _failed(server, "e2e/run-content-types")


def test_404_for_a_wrong_method_fails_routing(server, monkeypatch):
    from reference.host import app
    monkeypatch.setattr(app, "_not_allowed", lambda: (404, app._error(404, "not_found", "no")))
    _failed(server, "e2e/routing")


@pytest.mark.parametrize("leak", ["trace", "echo", "key"])
def test_revealing_error_messages_fail_run_messages(server, monkeypatch, leak):
    from reference.enclave import envelope as ref
    original = ref.open_envelope

    def leaky(sealed, secret):
        try:
            return original(sealed, secret)
        except ref.EnvelopeError:
            message = {"trace": 'Traceback (most recent call last): File "envelope.py", line 3',
                       "echo": f"bad nonce {sealed.nonce.hex()}",
                       "key": f"key {ref._derive_key(secret, sealed.ephemeral_public_key).hex()}"}[leak]
            raise ref.EnvelopeError(ref.EnvelopeCode.DECRYPTION_FAILED, message) from None
    monkeypatch.setattr(ref, "open_envelope", leaky)
    _failed(server, "errors/run-messages")


def test_every_open_stage_kind_of_the_vector_file_is_rebuilt():
    """A new kind of "open" vector must get a forgery in the harness, or it would be skipped."""
    kinds = {flag for group in faults._INVALID["testGroups"] if group["stage"] == "open"
             for vector in group["tests"] for flag in vector["flags"]}
    assert kinds <= faults._OPEN_KINDS
    assert kinds - {"ValidControl", "LowOrderPublicKey"} <= set(faults.FORGERIES)


def test_transplant_keeps_the_fault_and_takes_the_fresh_values():
    class Client:
        enclave_public_key = bytes.fromhex(faults._INVALID["testGroups"][2]["enclavePublicKey"])

        def seal(self, plaintext, client_secret=None, nonce=None):
            from harness.protocol import envelope
            import os
            secret = client_secret or os.urandom(32)
            return secret, envelope.seal(self.enclave_public_key, plaintext, ephemeral_secret=secret,
                                         nonce=nonce or os.urandom(24))

    target = faults.fresh(Context("x", Client()))
    kat = faults._KAT_MEMBERS
    fresh_members = target.members
    prefixed = ('{"ephemeralPublicKey":"0x%s","nonce":"%s","ciphertext":"%s"}'
                % (kat["ephemeralPublicKey"], kat["nonce"], kat["ciphertext"])).encode()
    out = json.loads(faults.transplant(prefixed, target))
    assert out == {**fresh_members, "ephemeralPublicKey": "0x" + fresh_members["ephemeralPublicKey"]}
    spaced = prefixed.replace(b"0x", b"").replace(kat["ciphertext"][:2].encode(), kat["ciphertext"][:2].encode() + b"  ", 1)
    out = json.loads(faults.transplant(spaced, target))
    assert out["ciphertext"].replace(" ", "") == fresh_members["ciphertext"] and "  " in out["ciphertext"]


def test_every_transplanted_vector_is_made_of_the_fresh_request_only():
    """No 16-digit run of the vector file's own hex survives a transplant (the body stays the
    vector's otherwise), so a Vault tolerating the fault reads the fresh, decryptable request."""
    target = faults.fresh(Context("x", _OfflineClient()))
    kat_runs = [v[i:i + 16] for v in faults._KAT_MEMBERS.values() for i in range(len(v) - 15)]
    checked = 0
    for group in faults._INVALID["testGroups"]:
        if group["stage"] == "open":
            continue
        for vector in group["tests"]:
            original = faults._vector_body(vector)
            out = faults.transplant(original, target)
            encoding = "utf-16-le" if "UTF-16" in vector["comment"] else "utf-8"
            text = out.decode(encoding, errors="replace").lower()
            assert not [r for r in kat_runs if r in text], vector["comment"]
            assert len(out) - len(original) in (0,), vector["comment"]  # same layout, same length
            checked += 1
    assert checked > 60


class _OfflineClient:
    """seal() against the vector file's enclave key: transplanting needs no server."""

    enclave_public_key = bytes.fromhex(faults._INVALID["testGroups"][2]["enclavePublicKey"])

    def seal(self, plaintext, client_secret=None, nonce=None):
        import os

        from harness.protocol import envelope
        secret = client_secret or os.urandom(32)
        return secret, envelope.seal(self.enclave_public_key, plaintext, ephemeral_secret=secret,
                                     nonce=nonce or os.urandom(24))
