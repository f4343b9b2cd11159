"""Write vectors/envelope_kat.json and vectors/envelope_invalid.json (PROTOCOL.md section 2).

Not part of the installed package (this folder has no ``__init__.py``) and never run by the
tests: the tests only read the JSON files it wrote, and tests/interop/verify_envelope_kats.mjs
checks them with the published client's own libraries (@noble/curves, hashes, ciphers).

It uses PyNaCl (libsodium) and pyca/cryptography directly, never ``reference`` or ``harness``,
so that the vectors do not inherit a bug of either implementation.

Every secret and nonce is derived from a label (SHA-256 of ``LABEL_PREFIX + label``), so the
output is the same on every run:

    python vectors/_generate/envelope.py            # rewrite both files
    python vectors/_generate/envelope.py --check    # exit 1 if the files differ from the output
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import nacl.bindings as sodium
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VECTORS = Path(__file__).resolve().parent.parent
LABEL_PREFIX = b"nitro-vault-reference/vectors/envelope/"
HKDF_INFO = b"encryption"
MAX_BODY_BYTES = 1 << 20
SOURCE = {"name": "nitro-vault-reference vectors/_generate/envelope.py", "version": "1"}


def derived(label: str, size: int = 32) -> bytes:
    return hashlib.sha256(LABEL_PREFIX + label.encode()).digest()[:size]


def compact(value: object) -> bytes:
    """The plaintext encoding the client uses: JSON.stringify, i.e. compact, raw UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def kdf(shared: bytes, info: bytes = HKDF_INFO) -> bytes:
    return HKDF(hashes.SHA256(), 32, None, info).derive(shared)


def seal(secret: bytes, peer_public: bytes, nonce: bytes, msg: bytes) -> dict:
    shared = sodium.crypto_scalarmult(secret, peer_public)
    key = kdf(shared)
    ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(msg, None, nonce, key)
    return {
        "ephemeralSecret": secret.hex(),
        "nonce": nonce.hex(),
        "msg": msg.hex(),
        "sharedSecret": shared.hex(),
        "key": key.hex(),
        "envelope": {
            "ephemeralPublicKey": sodium.crypto_scalarmult_base(secret).hex(),
            "nonce": nonce.hex(),
            "ciphertext": ciphertext.hex(),
        },
    }


ENCLAVE_SECRET = derived("enclave-static-secret")
ENCLAVE_PUBLIC = sodium.crypto_scalarmult_base(ENCLAVE_SECRET)
TS = "2026-11-27T12:00:00.000Z"
ADMIN = {"adminKey": "sa_adm_" + derived("admin-key", 16).hex()}
TOKEN = {"accessToken": "vt_act_" + derived("access-token", 16).hex()}
EOA = "0x" + derived("eoa-address", 20).hex()
SOL = "7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV"


def ok(data: object) -> dict:
    return {"success": True, "data": data, "error": None}


def fail(code: str, message: str) -> dict:
    return {"success": False, "data": None, "error": {"code": code, "message": message}}


ACCESS_TOKEN_DATA = {
    "accessToken": TOKEN["accessToken"],
    "id": "0d6bb0f2-64b5-4d8c-b0d6-9a3a1b7b2f10",
    "issuerId": "4a2f3b1e-9b0c-4c47-8d0e-3a5b7c9d1e2f",
    "issuerType": "serviceAccount",
    "policies": [{"type": "eoa:signMessage", "allowlist": [EOA], "messagePattern": "^hello"}],
    "expiresAt": "2027-01-01T00:00:00.000Z",
    "metadata": {"purpose": "kat"},
    "createdAt": TS,
    "updatedAt": TS,
    "isRotated": False,
}

# (comment, flags, request plaintext, response plaintext). Plaintexts are bytes, usually JSON.
CASES: list[tuple[str, list[str], bytes, bytes]] = [
    ("ping", ["Normal", "Operation"],
     compact({"operation": "ping", "options": {"message": "hi"}}),
     compact(ok({"timestamp": TS, "pong": "hi"}))),
    ("empty plaintext both ways: ciphertext is the 16-byte tag alone", ["EmptyPlaintext"], b"", b""),
    ("empty JSON object both ways", ["EmptyPlaintext"], b"{}", b"{}"),
    ("unicode in the request and the response (raw UTF-8, not \\u escapes)", ["Unicode", "Operation"],
     compact({"operation": "ping", "options": {"message": "héllo wörld ✓ 日本語 🔐 \u0000 \u2028"}}),
     compact(ok({"timestamp": TS, "pong": "héllo wörld ✓ 日本語 🔐 \u0000 \u2028"}))),
    ("large: a ping of 65,536 message characters and its echo", ["Large", "Operation"],
     compact({"operation": "ping", "options": {"message": "ab" * 32768}}),
     compact(ok({"timestamp": TS, "pong": "ab" * 32768}))),
    ("plaintext of exactly 64 bytes (one ChaCha20 block)", ["BlockBoundary"],
     compact({"operation": "ping", "options": {"message": "x" * 26}}),
     compact(ok({"timestamp": TS, "pong": "x" * 8}))),
    ("plaintext of 65 bytes (one ChaCha20 block plus one byte)", ["BlockBoundary"],
     compact({"operation": "ping", "options": {"message": "x" * 27}}),
     compact(ok({"timestamp": TS, "pong": "x" * 9}))),
    ("serviceAccount:create", ["Operation"],
     compact({"operation": "serviceAccount:create", "options": {"metadata": {"name": "kat"}}}),
     compact(ok({"id": "4a2f3b1e-9b0c-4c47-8d0e-3a5b7c9d1e2f", "adminKey": ADMIN["adminKey"],
                 "rotationCode": "sa_rot_" + derived("rotation-code", 16).hex(),
                 "createdAt": TS, "updatedAt": TS}))),
    ("serviceAccount:get", ["Operation"],
     compact({"operation": "serviceAccount:get", "auth": ADMIN}),
     compact(ok({"id": "4a2f3b1e-9b0c-4c47-8d0e-3a5b7c9d1e2f", "metadata": {"name": "kat"},
                 "createdAt": TS, "updatedAt": TS}))),
    ("serviceAccount:rotate", ["Operation"],
     compact({"operation": "serviceAccount:rotate",
              "auth": {"rotationCode": "sa_rot_" + derived("rotation-code", 16).hex()}}),
     compact(ok({"newAdminKey": "sa_adm_" + derived("admin-key-2", 16).hex(),
                 "newRotationCode": "sa_rot_" + derived("rotation-code-2", 16).hex()}))),
    ("eoa:create", ["Operation"],
     compact({"operation": "eoa:create", "auth": ADMIN, "options": {"metadata": {"team": "kat"}}}),
     compact(ok({"id": "8c3f6b0e-5a1d-4e2f-9b7c-1d2e3f4a5b6c", "address": EOA,
                 "metadata": {"team": "kat"}, "createdAt": TS, "updatedAt": TS}))),
    ("eoa:list", ["Operation"],
     compact({"operation": "eoa:list", "auth": TOKEN, "options": {"page": 1, "pageSize": 10}}),
     compact(ok({"items": [{"id": "8c3f6b0e-5a1d-4e2f-9b7c-1d2e3f4a5b6c", "address": EOA,
                            "metadata": {"team": "kat"}, "createdAt": TS, "updatedAt": TS}],
                 "page": 1, "pageSize": 10, "totalRecords": 1}))),
    ("eoa:signMessage", ["Operation"],
     compact({"operation": "eoa:signMessage", "auth": TOKEN,
              "options": {"from": EOA, "message": "hello", "chainId": 1, "format": "text"}}),
     compact(ok({"signature": derived("sig-1").hex() + derived("sig-2").hex() + "1b"}))),
    ("eoa:signTypedData", ["Operation"],
     compact({"operation": "eoa:signTypedData", "auth": TOKEN, "options": {"from": EOA, "typedData": {
         "domain": {"name": "KAT", "version": "1", "chainId": 1},
         "types": {"Mail": [{"name": "contents", "type": "string"}]},
         "primaryType": "Mail", "message": {"contents": "hi"}}}}),
     compact(ok({"signature": derived("sig-3").hex() + derived("sig-4").hex() + "1c"}))),
    ("eoa:signTransaction", ["Operation"],
     compact({"operation": "eoa:signTransaction", "auth": TOKEN, "options": {"from": EOA, "transaction": {
         "type": "0x02", "chainId": "0x1", "nonce": "0x0", "to": EOA, "value": "0xde0b6b3a7640000",
         "data": "0x", "gasLimit": "0x5208", "maxFeePerGas": "0x3b9aca00",
         "maxPriorityFeePerGas": "0x59682f00", "accessList": []}}}),
     compact(ok({"signature": "02f8" + derived("raw-tx", 32).hex()}))),
    ("eoa:signAuthorization", ["Operation"],
     compact({"operation": "eoa:signAuthorization", "auth": TOKEN, "options": {
         "from": EOA, "authorization": {"chainId": 1, "address": EOA, "nonce": 0}}}),
     compact(ok({"signedAuthorization": {"chainId": 1, "address": EOA, "nonce": 0, "yParity": 1,
                                         "r": "0x" + derived("auth-r").hex(),
                                         "s": "0x" + derived("auth-s").hex()}}))),
    ("eoa:signStructuredMessage", ["Operation"],
     compact({"operation": "eoa:signStructuredMessage", "auth": TOKEN, "options": {
         "from": EOA, "chainId": 1, "structuredMessage": {"useropV07": {
             "sender": EOA, "nonce": "0x0", "callData": "0x", "callGasLimit": "0x0",
             "verificationGasLimit": "0x0", "preVerificationGas": "0x0", "maxFeePerGas": "0x0",
             "maxPriorityFeePerGas": "0x0", "signature": "0x", "entrypoint": EOA}}}}),
     compact(ok({"signature": derived("sig-5").hex() + derived("sig-6").hex() + "1b",
                 "message": "0x" + derived("userop-hash").hex()}))),
    ("accessToken:create", ["Operation"],
     compact({"operation": "accessToken:create", "auth": ADMIN, "options": {
         "policies": ACCESS_TOKEN_DATA["policies"], "expiresAt": ACCESS_TOKEN_DATA["expiresAt"],
         "metadata": ACCESS_TOKEN_DATA["metadata"]}}),
     compact(ok(ACCESS_TOKEN_DATA))),
    ("accessToken:list", ["Operation"],
     compact({"operation": "accessToken:list", "auth": ADMIN, "options": {"page": 1, "pageSize": 5}}),
     compact(ok({"items": [ACCESS_TOKEN_DATA], "page": 1, "pageSize": 5, "totalRecords": 1}))),
    ("accessToken:revoke", ["Operation"],
     compact({"operation": "accessToken:revoke", "auth": ADMIN, "options": {"id": ACCESS_TOKEN_DATA["id"]}}),
     compact(ok({**ACCESS_TOKEN_DATA, "revokedAt": TS}))),
    ("solana:create", ["Operation"],
     compact({"operation": "solana:create", "auth": ADMIN, "options": {"metadata": {"team": "kat"}}}),
     compact(ok({"pubkey": SOL, "metadata": {"team": "kat"}, "createdAt": TS, "updatedAt": TS}))),
    ("solana:list", ["Operation"],
     compact({"operation": "solana:list", "auth": TOKEN, "options": {"page": 1, "pageSize": 10}}),
     compact(ok({"items": [{"pubkey": SOL, "metadata": {"team": "kat"}, "createdAt": TS, "updatedAt": TS}],
                 "totalCount": 1, "page": 1, "pageSize": 10}))),
    ("solana:signMessage", ["Operation"],
     compact({"operation": "solana:signMessage", "auth": TOKEN,
              "options": {"from": SOL, "message": "hello", "format": "text"}}),
     compact(ok({"signature": "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW"}))),
    ("solana:signTransaction", ["Operation"],
     compact({"operation": "solana:signTransaction", "auth": TOKEN,
              "options": {"from": SOL, "transaction": "AQABAgMEBQYHCAkKCwwNDg8Q"}}),
     compact(ok({"signature": "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW",
                 "signerPubkey": SOL}))),
    ("enclave:attest (reference extension)", ["Operation"],
     compact({"operation": "enclave:attest", "options": {"nonce": derived("attest-nonce").hex()}}),
     compact(ok({"attestationDocument": "hEShATgioFkQ" + "A" * 64}))),
    ("enclave:keyPolicy (reference extension)", ["Operation"],
     compact({"operation": "enclave:keyPolicy"}),
     compact(ok({"keyId": "arn:aws:kms:us-east-1:111122223333:key/kat", "pcr0": "00" * 48}))),
    ("encrypted error reply (success false)", ["Operation", "ErrorReply"],
     compact({"operation": "eoa:signMessage", "auth": TOKEN,
              "options": {"from": EOA, "message": "nope"}}),
     compact(fail("auth_insufficient_scope", "no policy allows eoa:signMessage for this message"))),
    ("unknown session token auth, rejected inside the envelope", ["Operation", "ErrorReply"],
     compact({"operation": "eoa:list", "auth": {"sessionToken": "st_" + derived("session", 8).hex()}}),
     compact(fail("auth_unsupported_method", "sessionToken is not supported"))),
]

EDGE_SECRETS = [
    ("client secret all 0xff except one zero byte, response secret all 0x00: clamping decides the scalar",
     ["EdgeCaseSecret"], b"\xff" * 16 + b"\x00" + b"\xff" * 15, bytes(32)),
    ("client secret all 0x00, response secret all 0xff: its clamped scalar 2^255 - 8 is above p",
     ["EdgeCaseSecret", "ScalarAboveP"], bytes(32), b"\xff" * 32),
]

NOTES_KAT = {
    "Normal": {"bugType": "BASIC", "description": "A typical request and reply."},
    "Operation": {"bugType": "BASIC", "description": "The plaintext has the shape of one operation of PROTOCOL.md section 5 and its reply."},
    "EmptyPlaintext": {"bugType": "EDGE_CASE", "description": "A zero-length or minimal plaintext: the ciphertext is (almost) only the 16-byte tag."},
    "Unicode": {"bugType": "FUNCTIONALITY", "description": "Non-ASCII text encoded as raw UTF-8 (as JSON.stringify and TextEncoder produce), including U+0000 and U+2028."},
    "Large": {"bugType": "FUNCTIONALITY", "description": "A plaintext of about 64 KiB."},
    "BlockBoundary": {"bugType": "EDGE_CASE", "description": "Plaintext length at a 64-byte ChaCha20 block boundary."},
    "ErrorReply": {"bugType": "BASIC", "description": "An encrypted success:false reply (PROTOCOL.md section 4)."},
    "ScalarAboveP": {"bugType": "EDGE_CASE", "description": "The response's ephemeral secret clamps to 2^255 - 8, which is larger than p = 2^255 - 19. RFC 7748 defines X25519 for every clamped scalar and libsodium and pyca/cryptography compute it; @noble/curves 1.8.2 (the published client's) refuses such a scalar in getPublicKey/getSharedSecret. Only the enclave uses this secret, so the client still opens the reply; a client picking such a secret at random is a 2^-250 event."},
    "EdgeCaseSecret": {"bugType": "EDGE_CASE", "description": "An X25519 secret whose clamping (RFC 7748 section 5) changes it; the public key and shared secret follow from the clamped scalar."},
}


def kat() -> dict:
    tests = []
    cases = [(c, f, q, r, None) for c, f, q, r in CASES]
    cases += [(c, f, CASES[0][2], CASES[0][3], (cs, rs)) for c, f, cs, rs in EDGE_SECRETS]
    for tc_id, (comment, flags, request_msg, response_msg, secrets) in enumerate(cases, start=1):
        client_secret, response_secret = secrets or (
            derived(f"kat/{tc_id}/client-secret"), derived(f"kat/{tc_id}/response-secret"))
        request = seal(client_secret, ENCLAVE_PUBLIC, derived(f"kat/{tc_id}/request-nonce", 24), request_msg)
        client_public = bytes.fromhex(request["envelope"]["ephemeralPublicKey"])
        response = seal(response_secret, client_public, derived(f"kat/{tc_id}/response-nonce", 24), response_msg)
        tests.append({"tcId": tc_id, "comment": comment, "flags": flags,
                      "request": request, "response": response, "result": "valid"})
    return {
        "algorithm": "VAULT-ENVELOPE-X25519-HKDF-SHA256-XCHACHA20POLY1305",
        "schema": "envelope_kat_schema.json",
        "numberOfTests": len(tests),
        "header": [
            "Known answers for the Vault envelope, PROTOCOL.md section 2, both directions.",
            "request: the client's ephemeralSecret and nonce seal msg to the group's enclavePublicKey.",
            "response: the enclave's fresh ephemeralSecret and nonce seal msg to the request's ephemeralPublicKey.",
            "sharedSecret = X25519(ephemeralSecret, recipient public key);",
            "key = HKDF-SHA256(ikm=sharedSecret, salt absent, info=hkdfInfo, L=32);",
            "envelope.ciphertext = XChaCha20-Poly1305-IETF(key, nonce, aad empty)(msg), tag appended.",
            "Opening: the enclave derives sharedSecret as X25519(enclaveSecret, request.envelope.ephemeralPublicKey);",
            "the client as X25519(request.ephemeralSecret, response.envelope.ephemeralPublicKey).",
            "Written by vectors/_generate/envelope.py; checked independently by tests/interop/verify_envelope_kats.mjs.",
        ],
        "notes": NOTES_KAT,
        "testGroups": [{
            "type": "EnvelopeKat",
            "source": SOURCE,
            "hkdfInfo": HKDF_INFO.hex(),
            "enclaveSecret": ENCLAVE_SECRET.hex(),
            "enclavePublicKey": ENCLAVE_PUBLIC.hex(),
            "tests": tests,
        }],
    }


# --- invalid request bodies -------------------------------------------------------------------

P = (1 << 255) - 19
LOW_ORDER = [
    ("0 (order 4)", 0),
    ("1 (order 1)", 1),
    ("order-8 point", 325606250916557431795983626356110631294008115727848805560023387167927233504),
    ("order-8 point", 39382357235489614581723060781553021112529911719440698176882885853963445705823),
    ("p-1 (order 2)", P - 1),
    ("p, non-canonical 0", P),
    ("p+1, non-canonical 1", P + 1),
]

NOTES_INVALID = {
    "NotJson": {"bugType": "MALFORMED_INPUT", "description": "The body is not JSON text (RFC 8259)."},
    "NotUtf8": {"bugType": "MALFORMED_INPUT", "description": "The body is not UTF-8; RFC 8259 section 8.1 requires UTF-8 between systems."},
    "Bom": {"bugType": "MALFORMED_INPUT", "description": "A UTF-8 byte order mark precedes the JSON text. RFC 8259 section 8.1: senders MUST NOT add it, receivers MAY ignore it. Either answer is acceptable; a rejection must be invalid_json."},
    "DuplicateKey": {"bugType": "AMBIGUOUS_INPUT", "description": "An object has a key twice. Parsers disagree on which value wins, so a proxy and the enclave could see different envelopes; the project rejects it as invalid_json."},
    "DeepNesting": {"bugType": "DOS", "description": "Deeply nested arrays: a recursive parser may overflow its stack. The answer must be a 400, never a 500 or a crash."},
    "PayloadTooLarge": {"bugType": "DOS", "description": "The body is longer than 1 MiB (1,048,576 bytes). The stored 'body' is padded with ASCII spaces (JSON whitespace) to 'bodySize' bytes; the Vault must answer 413 payload_too_large without parsing it."},
    "SizeBoundary": {"bugType": "EDGE_CASE", "description": "A well-formed envelope padded with spaces to exactly 1 MiB: not too large, so it must be parsed and accepted."},
    "NotAnObject": {"bugType": "MALFORMED_INPUT", "description": "Valid JSON whose top-level value is not an object: invalid_json."},
    "MissingField": {"bugType": "MALFORMED_INPUT", "description": "A required envelope field is absent: invalid_envelope."},
    "WrongType": {"bugType": "MALFORMED_INPUT", "description": "An envelope field is not a string (number, null, boolean, array, object): invalid_envelope."},
    "ExtraField": {"bugType": "FUNCTIONALITY", "description": "An unknown top-level field beside three valid ones. PROTOCOL.md does not forbid it and the published client never sends it: accepting (ignoring) or rejecting as invalid_envelope are both acceptable."},
    "UppercaseHex": {"bugType": "FUNCTIONALITY", "description": "Hex digits in upper or mixed case. PROTOCOL.md section 2 says Vaults write lowercase; reading uppercase is acceptable, rejecting it must be invalid_hex."},
    "HexPrefix": {"bugType": "MALFORMED_INPUT", "description": "A 0x prefix: PROTOCOL.md section 2 says hex without 0x. invalid_hex."},
    "OddLengthHex": {"bugType": "MALFORMED_INPUT", "description": "An odd number of hex digits: invalid_hex."},
    "NonHexCharacter": {"bugType": "MALFORMED_INPUT", "description": "A character outside [0-9a-fA-F], including whitespace (which Python's bytes.fromhex skips), a trailing newline (which a '$'-anchored regex lets through) and non-ASCII digits: invalid_hex."},
    "WrongLength": {"bugType": "MODIFIED_PARAMETER", "description": "ephemeralPublicKey not 32 bytes, nonce not 24 bytes, or ciphertext shorter than the 16-byte tag: invalid_length."},
    "LowOrderPublicKey": {"bugType": "CONFIDENTIALITY", "description": "ephemeralPublicKey is a point of small order on Curve25519 or its twist (the list libsodium refuses, with and without bit 255 set). X25519 with it gives an all-zero shared secret, so the key is known to anyone; PROTOCOL.md section 2 requires rejecting it: low_order_public_key.", "links": ["https://cr.yp.to/ecdh.html#validate", "RFC 7748 section 6.1"]},
    "ModifiedCiphertext": {"bugType": "AUTH_BYPASS", "description": "A ciphertext or tag bit flipped, bytes removed or added, or the nonce or key changed after sealing: the tag check must fail (decryption_failed) and no plaintext may be used."},
    "WrongKdf": {"bugType": "WRONG_PRIMITIVE", "description": "Sealed with a key other than HKDF-SHA256(shared, salt absent, info 'encryption'): the raw shared secret (the seed document's wording), another info, or a salt. A Vault that accepts it does not follow PROTOCOL.md section 2: decryption_failed."},
    "WrongAad": {"bugType": "WRONG_PRIMITIVE", "description": "Sealed with non-empty associated data; the envelope uses empty AAD: decryption_failed."},
    "ValidControl": {"bugType": "BASIC", "description": "An unmodified envelope from envelope_kat.json: it must be accepted, so the invalid cases around it fail for their own reason."},
}

STATUS = {"payload_too_large": 413}


def body_of(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def invalid(kat_file: dict) -> dict:
    group = kat_file["testGroups"][0]
    first = group["tests"][0]["request"]
    good = dict(first["envelope"])
    good_body = body_of(good)
    counter = iter(range(1, 10_000))

    def case(comment, flags, result="invalid", type_=None, **fields):
        test = {"tcId": next(counter), "comment": comment, "flags": flags}
        test.update(fields)
        if type_ is not None:
            test["status"] = STATUS.get(type_, 400)
            test["type"] = type_
        test["result"] = result
        return test

    def with_field(name, value):
        obj = dict(good)
        obj[name] = value
        return body_of(obj)

    # Stage "body": the raw bytes, before an envelope object exists.
    body_tests = [
        case("empty body", ["NotJson"], type_="invalid_json", body=""),
        case("plain text", ["NotJson"], type_="invalid_json", body="not json"),
        case("truncated JSON", ["NotJson"], type_="invalid_json", body=good_body[:-1]),
        case("trailing garbage after the object", ["NotJson"], type_="invalid_json", body=good_body + "x"),
        case("two objects back to back", ["NotJson"], type_="invalid_json", body=good_body + good_body),
        case("single-quoted strings", ["NotJson"], type_="invalid_json", body=good_body.replace('"', "'")),
        case("a JavaScript comment", ["NotJson"], type_="invalid_json", body="/* hi */" + good_body),
        case("invalid UTF-8 byte inside a string", ["NotUtf8"], type_="invalid_json",
             bodyHex=(good_body[:-2] + "\udcff" + good_body[-2:]).encode("utf-8", "surrogateescape").hex()),
        case("the envelope encoded as UTF-16LE", ["NotUtf8"], type_="invalid_json",
             bodyHex=good_body.encode("utf-16-le").hex()),
        case("UTF-8 byte order mark before a valid envelope", ["Bom"], result="acceptable", type_="invalid_json",
             bodyHex=(b"\xef\xbb\xbf" + good_body.encode()).hex()),
        case("duplicate key, same value", ["DuplicateKey"], type_="invalid_json",
             body=good_body[:-1] + ',"nonce":"' + good["nonce"] + '"}'),
        case("duplicate key, different value (a proxy and the enclave may pick different ones)",
             ["DuplicateKey"], type_="invalid_json",
             body='{"ephemeralPublicKey":"' + "00" * 32 + '",' + good_body[1:]),
        case("100,000 nested arrays", ["DeepNesting"], type_="invalid_json", body="[" * 100_000 + "]" * 100_000),
        case("valid envelope padded to 1 MiB + 1 byte", ["PayloadTooLarge"], type_="payload_too_large",
             body=good_body, bodySize=MAX_BODY_BYTES + 1),
        case("valid envelope padded to 16 MiB", ["PayloadTooLarge"], type_="payload_too_large",
             body=good_body, bodySize=16 * MAX_BODY_BYTES),
        case("valid envelope padded to exactly 1 MiB", ["SizeBoundary"], result="valid",
             body=good_body, bodySize=MAX_BODY_BYTES),
    ]

    # Stage "fields": a JSON value, checked as an envelope.
    field_tests = [
        case("top-level array", ["NotAnObject"], type_="invalid_json", body="[]"),
        case("top-level array holding a valid envelope", ["NotAnObject"], type_="invalid_json", body="[" + good_body + "]"),
        case("top-level string", ["NotAnObject"], type_="invalid_json", body='"' + good["ciphertext"] + '"'),
        case("top-level null", ["NotAnObject"], type_="invalid_json", body="null"),
        case("top-level number", ["NotAnObject"], type_="invalid_json", body="42"),
        case("top-level true", ["NotAnObject"], type_="invalid_json", body="true"),
        case("empty object", ["MissingField"], type_="invalid_envelope", body="{}"),
    ]
    for name in good:
        obj = {k: v for k, v in good.items() if k != name}
        field_tests.append(case(f"{name} missing", ["MissingField"], type_="invalid_envelope", body=body_of(obj)))
    for name in good:
        for label, value in [("a number", 12), ("null", None), ("true", True), ("an array of its hex", [good[name]]),
                             ("an object holding its hex", {"hex": good[name]})]:
            field_tests.append(case(f"{name} is {label}", ["WrongType"], type_="invalid_envelope",
                                    body=with_field(name, value)))
    field_tests.append(case("extra top-level field", ["ExtraField"], result="acceptable", type_="invalid_envelope",
                            body=body_of({**good, "version": 1})))
    field_tests.append(case("all fields uppercase hex", ["UppercaseHex"], result="acceptable", type_="invalid_hex",
                            body=body_of({k: v.upper() for k, v in good.items()})))
    field_tests.append(case("ciphertext in mixed-case hex", ["UppercaseHex"], result="acceptable", type_="invalid_hex",
                            body=with_field("ciphertext", good["ciphertext"][:8].upper() + good["ciphertext"][8:])))
    for name in good:
        field_tests.append(case(f"{name} with a 0x prefix", ["HexPrefix"], type_="invalid_hex",
                                body=with_field(name, "0x" + good[name])))
    for name in good:
        field_tests.append(case(f"{name} with an odd number of hex digits", ["OddLengthHex"], type_="invalid_hex",
                                body=with_field(name, good[name][:-1])))
    for name in good:
        field_tests.append(case(f"{name} with a 'g'", ["NonHexCharacter"], type_="invalid_hex",
                                body=with_field(name, "g" + good[name][1:])))
    ct = good["ciphertext"]
    field_tests += [
        case("ciphertext with two spaces between bytes (bytes.fromhex would skip them)", ["NonHexCharacter"],
             type_="invalid_hex", body=with_field("ciphertext", ct[:2] + "  " + ct[2:])),
        case("ciphertext with a trailing newline", ["NonHexCharacter"], type_="invalid_hex",
             body=with_field("ciphertext", ct + "\n")),
        case("ciphertext with an Arabic-Indic digit zero", ["NonHexCharacter"], type_="invalid_hex",
             body=with_field("ciphertext", "\u0660" + ct[1:])),
        case("nonce with a NUL character", ["NonHexCharacter"], type_="invalid_hex",
             body=with_field("nonce", good["nonce"][:-2] + "\u0000\u0000")),
    ]
    for name, size in [("ephemeralPublicKey", 0), ("ephemeralPublicKey", 31), ("ephemeralPublicKey", 33),
                       ("ephemeralPublicKey", 64), ("nonce", 0), ("nonce", 12), ("nonce", 23), ("nonce", 25),
                       ("nonce", 32), ("ciphertext", 0), ("ciphertext", 1), ("ciphertext", 15)]:
        value = (bytes.fromhex(good[name]) + bytes(64))[:size].hex()
        field_tests.append(case(f"{name} of {size} bytes", ["WrongLength"], type_="invalid_length",
                                body=with_field(name, value)))

    # Stage "open": well-formed envelopes that the enclave's key must refuse.
    open_tests = [case("unmodified request envelope of envelope_kat.json tcId 1", ["ValidControl"],
                       result="valid", body=good_body)]
    for label, value in LOW_ORDER:
        for high in (False, True):
            raw = bytearray(value.to_bytes(32, "little"))
            if high:
                raw[31] |= 0x80
            what = f"ephemeralPublicKey {label}" + (", bit 255 set" if high else "")
            open_tests.append(case(what, ["LowOrderPublicKey"], type_="low_order_public_key",
                                   body=with_field("ephemeralPublicKey", raw.hex())))

    def flip(hex_value: str, index: int) -> str:
        raw = bytearray(bytes.fromhex(hex_value))
        raw[index] ^= 0x01
        return raw.hex()

    nonce = bytes.fromhex(first["nonce"])
    msg = bytes.fromhex(first["msg"])
    shared = bytes.fromhex(first["sharedSecret"])
    other_secret = derived("invalid/other-client-secret")
    other_public = sodium.crypto_scalarmult_base(other_secret)

    def sealed_with(key: bytes, aad: bytes | None = None) -> str:
        return body_of({**good, "ciphertext": sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
            msg, aad, nonce, key).hex()})

    open_tests += [
        case("last tag bit flipped", ["ModifiedCiphertext"], type_="decryption_failed",
             body=with_field("ciphertext", flip(ct, -1))),
        case("first ciphertext bit flipped", ["ModifiedCiphertext"], type_="decryption_failed",
             body=with_field("ciphertext", flip(ct, 0))),
        case("ciphertext truncated by one byte", ["ModifiedCiphertext"], type_="decryption_failed",
             body=with_field("ciphertext", ct[:-2])),
        case("one byte appended to the ciphertext", ["ModifiedCiphertext"], type_="decryption_failed",
             body=with_field("ciphertext", ct + "00")),
        case("tag moved to the front", ["ModifiedCiphertext"], type_="decryption_failed",
             body=with_field("ciphertext", ct[-32:] + ct[:-32])),
        case("16 zero bytes: empty plaintext with a zero tag", ["ModifiedCiphertext"], type_="decryption_failed",
             body=with_field("ciphertext", "00" * 16)),
        case("nonce bit flipped", ["ModifiedCiphertext"], type_="decryption_failed",
             body=with_field("nonce", flip(good["nonce"], 0))),
        case("last nonce byte changed (the 8 bytes that reach ChaCha20 after HChaCha20)", ["ModifiedCiphertext"],
             type_="decryption_failed", body=with_field("nonce", flip(good["nonce"], -1))),
        case("ephemeralPublicKey replaced by another valid public key", ["ModifiedCiphertext"],
             type_="decryption_failed", body=with_field("ephemeralPublicKey", other_public.hex())),
        case("sealed with the raw X25519 shared secret as the key (no HKDF)", ["WrongKdf"],
             type_="decryption_failed", body=sealed_with(shared)),
        case("sealed with HKDF info 'decryption'", ["WrongKdf"], type_="decryption_failed",
             body=sealed_with(kdf(shared, b"decryption"))),
        case("sealed with HKDF and an empty info", ["WrongKdf"], type_="decryption_failed",
             body=sealed_with(kdf(shared, b""))),
        case("sealed with HKDF salted with the ephemeral public key", ["WrongKdf"], type_="decryption_failed",
             body=sealed_with(HKDF(hashes.SHA256(), 32, bytes.fromhex(good["ephemeralPublicKey"]),
                                   HKDF_INFO).derive(shared))),
        case("sealed with AAD = ephemeralPublicKey", ["WrongAad"], type_="decryption_failed",
             body=sealed_with(bytes.fromhex(first["key"]), bytes.fromhex(good["ephemeralPublicKey"]))),
    ]

    groups = [
        {"type": "EnvelopeBodyTest", "source": SOURCE, "stage": "body", "tests": body_tests},
        {"type": "EnvelopeBodyTest", "source": SOURCE, "stage": "fields", "tests": field_tests},
        {"type": "EnvelopeBodyTest", "source": SOURCE, "stage": "open",
         "enclavePublicKey": group["enclavePublicKey"], "tests": open_tests},
    ]
    return {
        "algorithm": "VAULT-ENVELOPE-REQUEST-BODY",
        "schema": "envelope_invalid_schema.json",
        "numberOfTests": sum(len(g["tests"]) for g in groups),
        "header": [
            "Raw POST /api/v1/enclave bodies that a Vault must refuse with an unencrypted error",
            "{\"error\": {\"message\", \"status\", \"type\"}} (PROTOCOL.md section 4) before any plaintext is used.",
            "'body' is the body as UTF-8 text; 'bodyHex' holds bodies that are not UTF-8.",
            "With 'bodySize', the body is 'body' followed by ASCII spaces up to bodySize bytes.",
            "'status' and 'type' are the expected HTTP status and error type; for 'acceptable' cases they are",
            "the answer required if the Vault refuses. 'valid' cases must be accepted.",
            "stage 'body': faults of the bytes or the JSON text; stage 'fields': a JSON value that is not",
            "a well-formed envelope; stage 'open': well-formed envelopes that must fail when opened with the",
            "secret of enclavePublicKey (envelope_kat.json's enclaveSecret).",
            "Each invalid case has one fault only, so the expected type does not depend on the order of checks.",
        ],
        "notes": NOTES_INVALID,
        "testGroups": groups,
    }


def render(obj: dict) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    kat_file = kat()
    outputs = {"envelope_kat.json": render(kat_file), "envelope_invalid.json": render(invalid(kat_file))}
    stale = []
    for name, text in outputs.items():
        path = VECTORS / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
