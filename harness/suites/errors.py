"""Bad input and errors (spec §3.5, §3.6, §4)."""

from __future__ import annotations

import json

from harness.protocol import envelope

from ._util import expect_encrypted_error, expect_success, request_bytes, require
from .registry import CheckFailed, Context, Level, check

# Curve25519 points of small order (and their non-canonical encodings): every one of them makes
# the X25519 shared secret all-zero, which a Vault must refuse (spec §3.6).
LOW_ORDER_POINTS = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
]

_KEY = "11" * 32
_NONCE = "22" * 24
_CT = "33" * 32


def _body(**fields) -> bytes:
    base = {"ephemeralPublicKey": _KEY, "nonce": _NONCE, "ciphertext": _CT}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


# (name, body, the spec's type code) — every one must be refused before decryption.
MALFORMED = [
    ("not-json", b"this is not json", "invalid_json"),
    ("not-utf8", b"\xff\xfe{}", "invalid_json"),
    ("empty-body", b"", "invalid_json"),
    ("json-array", b"[]", "invalid_json"),
    ("json-string", b'"envelope"', "invalid_json"),
    ("json-null", b"null", "invalid_json"),
    ("deeply-nested", b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
    ("duplicate-keys", b'{"ephemeralPublicKey":"%s","ephemeralPublicKey":"%s","nonce":"%s","ciphertext":"%s"}'
     % (_KEY.encode(), _KEY.encode(), _NONCE.encode(), _CT.encode()), "invalid_json"),
    ("missing-key", _body(ephemeralPublicKey=...), "invalid_envelope"),
    ("missing-nonce", _body(nonce=...), "invalid_envelope"),
    ("missing-ciphertext", _body(ciphertext=...), "invalid_envelope"),
    ("key-number", _body(ephemeralPublicKey=12), "invalid_envelope"),
    ("nonce-null", _body(nonce=None), "invalid_envelope"),
    ("ciphertext-array", _body(ciphertext=["00"]), "invalid_envelope"),
    ("key-odd-hex", _body(ephemeralPublicKey=_KEY + "1"), "invalid_hex"),
    ("nonce-not-hex", _body(nonce="zz" * 24), "invalid_hex"),
    ("ciphertext-0x", _body(ciphertext="0x" + _CT), "invalid_hex"),
    ("key-with-space", _body(ephemeralPublicKey="11 " + "11" * 31), "invalid_hex"),
    ("key-31-bytes", _body(ephemeralPublicKey="11" * 31), "invalid_length"),
    ("key-33-bytes", _body(ephemeralPublicKey="11" * 33), "invalid_length"),
    ("nonce-12-bytes", _body(nonce="22" * 12), "invalid_length"),
    ("nonce-25-bytes", _body(nonce="22" * 25), "invalid_length"),
    ("ciphertext-15-bytes", _body(ciphertext="33" * 15), "invalid_length"),
    ("ciphertext-empty", _body(ciphertext=""), "invalid_length"),
]


def _post(ctx: Context, body: bytes, what: str):
    response = ctx.client.post_raw(body)
    require(400 <= response.status_code < 500, f"{what}: expected a 4xx", expected="4xx", actual=response.status_code)
    try:
        answer = response.json()
    except ValueError:
        raise CheckFailed(f"{what}: answer is not JSON", expected="JSON", actual=response.text[:120]) from None
    error = answer.get("error") if isinstance(answer, dict) else None
    require(isinstance(error, dict) and "ciphertext" not in answer, f"{what}: not an unencrypted error",
            expected='{"error": {...}}', actual=str(answer)[:200])
    return response.status_code, error


@check("errors/malformed-rejected", section="4.4", level=Level.MUST,
       requirement="Malformed envelopes (not JSON, wrong types, bad hex, wrong lengths) MUST get a 4xx, never a 5xx.")
def malformed_rejected(ctx: Context):
    for name, body, _ in MALFORMED:
        _post(ctx, body, name)


@check("errors/unencrypted-shape", section="4.1", level=Level.MUST,
       requirement='An unencrypted error MUST be {"error": {"message": str, "status": int, "type": str}} '
                   "with status equal to the HTTP status.")
def unencrypted_shape(ctx: Context):
    for name, body, _ in MALFORMED:
        status, error = _post(ctx, body, name)
        require(isinstance(error.get("message"), str) and isinstance(error.get("type"), str),
                f"{name}: message and type must be strings", expected="str, str", actual=error)
        require(error.get("status") == status, f"{name}: status field differs from HTTP status",
                expected=status, actual=error.get("status"))


@check("errors/type-codes", section="4.3", level=Level.SHOULD,
       requirement="Unencrypted errors SHOULD carry the type codes of the spec's table 1.")
def type_codes(ctx: Context):
    wrong = []
    for name, body, expected in MALFORMED:
        _, error = _post(ctx, body, name)
        if error.get("type") != expected:
            wrong.append((name, expected, error.get("type")))
    require(not wrong, "type codes differ from table 1", expected=[(n, e) for n, e, _ in wrong],
            actual=[(n, a) for n, _, a in wrong])


@check("errors/low-order-key", section="3.6", level=Level.MUST,
       requirement="A request whose ephemeralPublicKey has small order (all-zero shared secret) MUST get a 4xx.")
def low_order_key(ctx: Context):
    for point in LOW_ORDER_POINTS:
        _post(ctx, _body(ephemeralPublicKey=point), f"low-order key {point[:8]}…")


@check("errors/huge-body", section="3.5", level=Level.MUST,
       requirement="A body over the size limit (1 MiB) MUST be refused with a 4xx (413 SHOULD) without harm.")
def huge_body(ctx: Context):
    body = _body(ciphertext="00" * (2 << 20))
    status, _ = _post(ctx, body, "2 MiB ciphertext")
    ctx.facts["huge_body_status"] = status


@check("errors/encrypted-after-decrypt", section="4.2", level=Level.MUST,
       requirement="Once a request decrypts, every error (not JSON, unknown operation, bad options) MUST be an "
                   "encrypted success:false reply with a code.")
def encrypted_after_decrypt(ctx: Context):
    cases = [
        ("plaintext not JSON", b"\x00not json"),
        ("plaintext not an object", b"[1, 2]"),
        ("operation missing", b"{}"),
        ("unknown operation", request_bytes("conformance:no-such-operation")),
        ("ping with a non-string message", request_bytes("ping", {"message": {"nested": True}})),
    ]
    for what, plaintext in cases:
        exchange = ctx.client.exchange(plaintext)
        require(exchange.status == 200 or exchange.response is not None, f"{what}: expected an encrypted reply",
                expected="encrypted reply", actual=exchange.status)
        expect_encrypted_error(exchange, what)


@check("errors/survives-bad-input", section="4.4", level=Level.MUST,
       requirement="After any amount of bad input the service MUST keep serving with nothing lost.")
def survives_bad_input(ctx: Context):
    account = expect_success(ctx.client.call("serviceAccount:create", options={"metadata": {"probe": "survive"}}),
                             "serviceAccount:create")
    for name, body, _ in MALFORMED * 2:
        _post(ctx, body, name)
    for point in LOW_ORDER_POINTS:
        _post(ctx, _body(ephemeralPublicKey=point), "low-order key")
    _post(ctx, _body(ciphertext="00" * (2 << 20)), "huge body")
    secret, sealed = ctx.client.seal(b"{}")
    garbage = envelope.Envelope(sealed.ephemeral_public_key, sealed.nonce, bytes(len(sealed.ciphertext)))
    _post(ctx, garbage.to_bytes(), "forged ciphertext")
    data = expect_success(ctx.client.call("serviceAccount:get", auth={"adminKey": account["adminKey"]}),
                          "serviceAccount:get after bad input")
    require(data.get("id") == account["id"] and data.get("metadata") == {"probe": "survive"},
            "account changed after bad input", expected=account["id"], actual=data)
