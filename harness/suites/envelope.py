"""The target's envelope parser, fault by fault (spec §3.5, §3.6, §4.4).

Every case starts from a request sealed correctly to the TARGET's own static key (GET
/api/v1/enclave) and then gets exactly one fault. A Vault that tolerates the fault can decrypt
the request and answers 200, so the check fails it; a Vault that enforces the rule answers an
unencrypted 4xx. Cases that the spec requires to be accepted (upper and mixed case hex, a body
of exactly 1 MiB) must be answered 200 with the ping's pong.

The kinds of faults come from ``vectors/envelope_invalid.json``: its "body" and "fields" cases
are *transplanted* onto a fresh request (the vector file's own hex values are replaced by the
fresh request's, the fault kept as it is; the fresh plaintext has the vectors' length so every
position lines up), its low-order points are sealed with the key a Vault without the low-order
check would derive, and its "open" kinds are rebuilt with the target's key. Where the vector
file has one instance of a kind, the harness adds the others the rule covers: every whitespace
character at every position of every member, every wrong length, both orders of a duplicate.
"""

from __future__ import annotations

import difflib
import importlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import Callable

from .. import sibling
from ..protocol import envelope
from ..protocol.client import ProtocolViolation
from ._util import ENVELOPE_MEMBERS, require, top_up_record
from .registry import CheckFailed, Context, Level, check

ENVELOPE_PATHS = ("/api/v1/enclave", "/v1/enclave/post")

MIB = 1 << 20

# ---- the vector file's own request, which every transplanted case is made of -----------------

vectors = importlib.import_module(sibling("vectors"))  # the vector files, a sibling package
_KAT_REQUEST = vectors.load("envelope_kat")["testGroups"][0]["tests"][0]["request"]
_KAT_PLAINTEXT = bytes.fromhex(_KAT_REQUEST["msg"])  # {"operation":"ping","options":{"message":"hi"}}
_KAT_MEMBERS = _KAT_REQUEST["envelope"]  # ephemeralPublicKey, nonce, ciphertext as lowercase hex
MEMBERS = ("ephemeralPublicKey", "nonce", "ciphertext")
# A ping whose plaintext has the KAT's length, so the fresh ciphertext has the KAT's length too.
_PING = b'{"operation":"ping","options":{"message":"%s"}}'
assert len(_PING % b"hi") == len(_KAT_PLAINTEXT)

_INVALID = vectors.load("envelope_invalid")
_OPEN_KINDS = {"ValidControl", "LowOrderPublicKey", "ModifiedCiphertext", "WrongKdf", "WrongAad"}


@dataclass
class Fresh:
    """A ping sealed correctly to the target, ready to be given one fault."""

    message: str
    plaintext: bytes
    secret: bytes
    sealed: envelope.Envelope

    @property
    def members(self) -> dict[str, str]:
        return self.sealed.to_json()

    def body(self, members: dict | None = None, **json_options) -> bytes:
        return json.dumps(members or self.members, separators=(",", ":"), **json_options).encode("utf-8")


def fresh(ctx: Context, *, nonce: bytes | None = None, secret: bytes | None = None,
          message: str | None = None) -> Fresh:
    message = message if message is not None else os.urandom(1).hex()  # 2 characters, like "hi"
    plaintext = json.dumps({"operation": "ping", "options": {"message": message}}, separators=(",", ":")).encode()
    secret, sealed = ctx.client.seal(plaintext, client_secret=secret, nonce=nonce)
    return Fresh(message, plaintext, secret, sealed)


@dataclass
class Case:
    """One request with one fault, and what the spec requires of the answer."""

    name: str
    body: bytes
    expect: str  # "refuse" (unencrypted 4xx), "accept" (200 and the pong), "either" (one of the two)
    type: str | None = None  # the table-1 type a refusal SHOULD carry
    status: int | None = None  # the HTTP status a refusal SHOULD carry (413 for size)
    fresh: Fresh | None = None  # for "accept" and "either": what the reply must echo
    headers: dict = field(default_factory=dict)


# ---- transplanting a vector onto a fresh request ----------------------------------------------

_STRING_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'', re.S)


def _recase(new: str, faulty: str) -> str:
    """``new`` in the case pattern of ``faulty`` (an upper or mixed case copy of a KAT value)."""
    if faulty == faulty.upper():
        return new.upper()
    out = "".join(n.upper() if f.isupper() else n for n, f in zip(new, faulty))
    if out == out.lower():  # the fresh value has digits where the vector had capitals
        first = next(i for i, c in enumerate(out) if c in "abcdef")
        out = out[:first] + out[first].upper() + out[first + 1:]
    return out


def _transplant_value(value: str, fresh_members: dict[str, str]) -> str:
    """Map one string of a vector body onto the fresh request, keeping its fault."""
    pairs = [(_KAT_MEMBERS[name], fresh_members[name]) for name in MEMBERS]
    for original, new in pairs:
        if value == original:
            return new
    for original, new in pairs:
        if value.lower() == original:
            return _recase(new, value)
    best = max(pairs, key=lambda pair: difflib.SequenceMatcher(None, pair[0], value, autojunk=False)
               .find_longest_match(0, len(pair[0]), 0, len(value)).size)
    original, new = best
    matcher = difflib.SequenceMatcher(None, original, value, autojunk=False)
    if matcher.find_longest_match(0, len(original), 0, len(value)).size < 8:
        return value  # not derived from a KAT value (a decoy, a member name): keep it
    out = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        out.append(new[i1:i2] if tag == "equal" else value[j1:j2])  # the fault's own characters stay
    return "".join(out)


def transplant(body: bytes, target: Fresh) -> bytes:
    """The vector body with every value derived from the KAT request replaced by ``target``'s."""
    members = target.members
    assert all(len(members[n]) == len(_KAT_MEMBERS[n]) for n in MEMBERS)
    if len(body) > 1 and body[1::2].strip(b"\0") == b"" and body[0:1] == b"{":
        encoding = "utf-16-le"  # the vector's UTF-16 body stays UTF-16
    else:
        encoding = "utf-8"
    text = body.decode(encoding, errors="surrogateescape")

    def replace(match: re.Match) -> str:
        quote = match.group(0)[0]
        inner = match.group(1) if match.group(1) is not None else match.group(2)
        return quote + _transplant_value(inner, members) + quote

    return _STRING_TOKEN.sub(replace, text).encode(encoding, errors="surrogateescape")


def _vector_body(case: dict) -> bytes:
    return bytes.fromhex(case["bodyHex"]) if "bodyHex" in case else case["body"].encode("utf-8")


def vector_cases(ctx: Context, *, flags: set[str] | None = None) -> list[Case]:
    """Every "body" and "fields" case of the vector file, transplanted onto a fresh request."""
    cases = []
    for group in _INVALID["testGroups"]:
        if group["stage"] == "open":
            continue
        for vector in group["tests"]:
            if flags is not None and not flags & set(vector["flags"]):
                continue
            target = fresh(ctx)
            body = transplant(_vector_body(vector), target)
            if "bodySize" in vector:
                body += b" " * (vector["bodySize"] - len(body))
            expect = {"invalid": "refuse", "valid": "accept", "acceptable": "either"}[vector["result"]]
            if "UppercaseHex" in vector["flags"]:
                expect = "accept"  # spec §3.5 step 4: digits A-F MUST be accepted in any mix of cases
            cases.append(Case(f"tcId {vector['tcId']}: {vector['comment']}", body, expect,
                              vector.get("type"), vector.get("status"), target))
    return cases


# ---- the faults the harness adds to the vector file's kinds -----------------------------------

# Whitespace and look-alikes a lenient hex decoder skips or reads as digits: JSON's four, the
# other ASCII whitespace and separators (str.strip, bytes.fromhex), Unicode spaces (int(x, 16)
# strips them), a BOM, and zero-width space.
WHITESPACE = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u1680", "\u2000",
              "\u2028", "\u2029", "\u3000", "\u200b", "\ufeff"]


def _with(target: Fresh, name: str, value) -> dict:
    members = target.members
    members[name] = value
    return members


def hex_syntax_cases(ctx: Context) -> list[Case]:
    cases = []

    def add(what, name, make, *, ascii_only=True):
        target = fresh(ctx)
        value = make(target.members[name])
        cases.append(Case(f"{name}: {what}", target.body(_with(target, name, value)), "refuse", "invalid_hex"))
        if not ascii_only:  # the same character written raw (UTF-8) rather than as a \\u escape
            target = fresh(ctx)
            value = make(target.members[name])
            cases.append(Case(f"{name}: {what} (raw UTF-8)",
                              target.body(_with(target, name, value), ensure_ascii=False), "refuse", "invalid_hex"))

    for name in MEMBERS:
        for char in WHITESPACE:
            plain = ord(char) < 0x80
            label = f"U+{ord(char):04X}"
            add(f"leading {label}", name, lambda v, c=char: c + v, ascii_only=plain)
            add(f"trailing {label}", name, lambda v, c=char: v + c, ascii_only=plain)
            add(f"{label} inside", name, lambda v, c=char: v[:2] + c + v[2:], ascii_only=plain)
        add("0x prefix", name, lambda v: "0x" + v)
        add("0X prefix", name, lambda v: "0X" + v)
        add("leading +", name, lambda v: "+" + v)
        add("leading -", name, lambda v: "-" + v)
        add("underscore inside", name, lambda v: v[:2] + "_" + v[2:])
        add("one digit removed", name, lambda v: v[:-1])
        add("one digit added", name, lambda v: v + "0")
        add("a 'g' instead of a digit", name, lambda v: "g" + v[1:])
        for what, base in (("full-width", 0xFF10), ("Arabic-Indic", 0x660), ("Devanagari", 0x966)):
            def lookalike(v, base=base):
                i = next(i for i, c in enumerate(v) if c.isdigit())
                return v[:i] + chr(base + int(v[i])) + v[i + 1:]
            add(f"a {what} digit for an ASCII one", name, lookalike, ascii_only=False)
    return cases


def hex_case_cases(ctx: Context) -> list[Case]:
    """Upper and mixed case hex: spec §3.5 step 4 requires both to be accepted."""
    cases = []
    for names in [(n,) for n in MEMBERS] + [MEMBERS]:
        for style in ("upper", "mixed"):
            target = fresh(ctx)
            members = target.members
            for name in names:
                value = members[name]
                members[name] = value.upper() if style == "upper" else _recase(
                    value, "".join("A" if i % 2 else "a" for i in range(len(value))))
            cases.append(Case(f"{'+'.join(names)} in {style} case hex", target.body(members), "accept", fresh=target))
    return cases


def _public_key_ending_in_zero(ctx: Context) -> bytes:
    """An ephemeral secret whose public key's last byte is 0, so a zero-padding Vault reads it whole."""
    while True:
        secret = os.urandom(envelope.KEY_BYTES)
        if envelope.public_key(secret)[-1] == 0:
            return secret


def length_cases(ctx: Context) -> list[Case]:
    """Every wrong length of every member (spec §3.5 step 5), built so a Vault that pads with
    zeros or truncates to the right length would read the sealed value and decrypt it."""
    cases = []
    padded_key_secret = _public_key_ending_in_zero(ctx)
    for n in [*range(0, 32), 33, 48, 64]:
        target = fresh(ctx, secret=padded_key_secret if n == 31 else None)
        key = target.sealed.ephemeral_public_key
        value = key[:n] if n < 32 else key + bytes(n - 32)
        cases.append(Case(f"ephemeralPublicKey of {n} bytes", target.body(_with(target, "ephemeralPublicKey", value.hex())),
                          "refuse", "invalid_length"))
    for n in [*range(0, 24), 25, 32, 48]:
        nonce = os.urandom(min(n, 24)) + bytes(max(0, 24 - n))
        target = fresh(ctx, nonce=nonce)
        value = nonce[:n] if n < 24 else nonce + bytes(n - 24)
        cases.append(Case(f"nonce of {n} bytes", target.body(_with(target, "nonce", value.hex())), "refuse", "invalid_length"))
    for n in range(0, 16):
        target = fresh(ctx)
        cases.append(Case(f"ciphertext of {n} bytes",
                          target.body(_with(target, "ciphertext", target.sealed.ciphertext[:n].hex())),
                          "refuse", "invalid_length"))
    return cases


def _decoy(name: str, target: Fresh) -> str:
    if name == "ephemeralPublicKey":
        return envelope.public_key(os.urandom(32)).hex()
    return os.urandom(len(target.members[name]) // 2).hex()


def duplicate_cases(ctx: Context) -> list[Case]:
    """A member twice, in both orders (decoy first, decoy last), the same value twice, and a
    duplicate in a nested object (spec §3.5 step 2): whichever copy a parser keeps, one order
    decrypts, so a Vault that does not refuse duplicates answers 200 to one of them."""
    cases = []
    for name in MEMBERS:
        for order in ("decoy first", "decoy last", "same value twice"):
            target = fresh(ctx)
            members = target.members
            real = members[name]
            other = real if order == "same value twice" else _decoy(name, target)
            first, last = (other, real) if order == "decoy first" else (real, other)
            parts = [f'"{n}":"{members[n]}"' for n in MEMBERS if n != name]
            text = "{" + ",".join([f'"{name}":"{first}"', *parts, f'"{name}":"{last}"']) + "}"
            cases.append(Case(f"{name} twice, {order}", text.encode(), "refuse", "invalid_json"))
    target = fresh(ctx)
    inner = target.body()[:-1]
    cases.append(Case("an unknown member twice", inner + b',"extra":1,"extra":1}', "refuse", "invalid_json"))
    target = fresh(ctx)
    cases.append(Case("a duplicate inside a nested object", target.body()[:-1] + b',"extra":{"a":1,"a":2}}',
                      "refuse", "invalid_json"))
    return cases


# Bytes after the object, and non-JSON whitespace around it (RFC 8259 allows space, tab, LF, CR only).
TRAILERS = [b"x", b"\x00", b"}", b"]", b",", b"null", b"0", b"{}", b"\xff", b"\x1a", b'"']
NON_JSON_SPACE = [b"\x0b", b"\x0c", b"\x00", b"\xc2\xa0", b"\xe2\x80\xa8", b"\xe3\x80\x80"]


def json_syntax_cases(ctx: Context) -> list[Case]:
    cases = []
    for trailer in TRAILERS:
        target = fresh(ctx)
        cases.append(Case(f"{trailer!r} after the object", target.body() + trailer, "refuse", "invalid_json"))
    for space in NON_JSON_SPACE:
        for where in ("before", "after"):
            target = fresh(ctx)
            body = space + target.body() if where == "before" else target.body() + space
            cases.append(Case(f"{space!r} {where} the object", body, "refuse", "invalid_json"))
    target = fresh(ctx)
    cases.append(Case("a member separated by U+00A0", target.body().replace(b'","', b'",\xc2\xa0"', 1), "refuse", "invalid_json"))
    target = fresh(ctx)
    cases.append(Case("the object twice", target.body() + target.body(), "refuse", "invalid_json"))
    target = fresh(ctx)
    cases.append(Case("the object twice, separated by a newline", target.body() + b"\n" + target.body(),
                      "refuse", "invalid_json"))
    return cases


def _filled_body(ctx: Context, size: int) -> Case:
    """A well-formed envelope of exactly ``size`` bytes whose ciphertext fills it (no padding)."""
    empty = fresh(ctx, message="")
    overhead = len(empty.body())  # a ciphertext grows by two hex digits per plaintext byte
    message_length = (size - overhead) // 2
    target = fresh(ctx, message="m" * message_length)
    body = target.body()
    body += b" " * (size - len(body))  # at most one space, when the overhead is odd
    assert len(body) == size
    return Case(f"an envelope of {size} bytes (its ciphertext fills it)", body,
                "accept" if size <= MIB else "refuse", "payload_too_large", 413, target)


def size_cases(ctx: Context) -> list[Case]:
    """The limit (spec §3.5 step 1): exactly 1 MiB is not too large, one byte more is."""
    cases = [c for c in vector_cases(ctx, flags={"PayloadTooLarge", "SizeBoundary"})]
    cases += [_filled_body(ctx, MIB), _filled_body(ctx, MIB + 1)]
    for size in (MIB, MIB + 1):
        target = fresh(ctx)
        body = target.body() + b" " * (size - len(target.body()))
        cases.append(Case(f"an envelope padded with spaces to {size} bytes", body,
                          "accept" if size <= MIB else "refuse", "payload_too_large", 413, target))
    return cases


def low_order_cases(ctx: Context) -> list[Case]:
    """Each low-order point of the vector file, with a ping sealed under the key a Vault that
    skips the all-zero check derives (spec §3.6): such a Vault decrypts it and answers 200."""
    cases = []
    for group in _INVALID["testGroups"]:
        for vector in group["tests"]:
            if "LowOrderPublicKey" not in vector["flags"]:
                continue
            point = bytes.fromhex(json.loads(vector["body"])["ephemeralPublicKey"])
            nonce = os.urandom(envelope.NONCE_BYTES)
            plaintext = _PING % b"lo"
            forged = envelope.Envelope(point, nonce, envelope.encrypt(envelope.LOW_ORDER_KEY, nonce, plaintext))
            cases.append(Case(f"tcId {vector['tcId']}: {vector['comment']}", forged.to_bytes(), "refuse",
                              "low_order_public_key"))
    return cases


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _forge(ctx: Context, make: Callable[[Fresh, bytes], envelope.Envelope]) -> bytes:
    target = fresh(ctx)
    shared = envelope.shared_secret(target.secret, ctx.client.enclave_public_key)
    return make(target, shared).to_bytes()


def _sealed_with(key_of: Callable[[Fresh, bytes], bytes], aad: Callable[[Fresh], bytes | None] = lambda t: None):
    def make(target: Fresh, shared: bytes) -> envelope.Envelope:
        sealed = target.sealed
        ciphertext = envelope.encrypt(key_of(target, shared), sealed.nonce, target.plaintext, aad(target))
        return envelope.Envelope(sealed.ephemeral_public_key, sealed.nonce, ciphertext)
    return make


def _changed(ciphertext=lambda c: c, nonce=lambda n: n, key=lambda k: k):
    def make(target: Fresh, shared: bytes) -> envelope.Envelope:
        sealed = target.sealed
        return envelope.Envelope(key(sealed.ephemeral_public_key), nonce(sealed.nonce), ciphertext(sealed.ciphertext))
    return make


# The "open" kinds of the vector file, rebuilt on the target's key: each must fail authentication.
FORGERIES: dict[str, list[tuple[str, Callable]]] = {
    "ModifiedCiphertext": [
        ("last tag bit flipped", _changed(ciphertext=lambda c: _flip(c, len(c) * 8 - 1))),
        ("first tag bit flipped", _changed(ciphertext=lambda c: _flip(c, (len(c) - 16) * 8))),
        ("first ciphertext bit flipped", _changed(ciphertext=lambda c: _flip(c, 0))),
        ("a middle ciphertext bit flipped", _changed(ciphertext=lambda c: _flip(c, len(c) * 4 + 3))),
        ("ciphertext truncated by one byte", _changed(ciphertext=lambda c: c[:-1])),
        ("one byte appended to the ciphertext", _changed(ciphertext=lambda c: c + b"\0")),
        ("tag moved to the front", _changed(ciphertext=lambda c: c[-16:] + c[:-16])),
        ("16 zero bytes", _changed(ciphertext=lambda c: bytes(16))),
        ("a ciphertext of zeros", _changed(ciphertext=lambda c: bytes(len(c)))),
        ("nonce bit flipped", _changed(nonce=lambda n: _flip(n, 0))),
        ("last nonce byte changed", _changed(nonce=lambda n: n[:-1] + bytes([n[-1] ^ 0xFF]))),
        ("ephemeralPublicKey replaced by another valid key", _changed(key=lambda k: envelope.public_key(os.urandom(32)))),
    ],
    "WrongKdf": [
        ("sealed with the raw shared secret (no HKDF)", _sealed_with(lambda t, s: s)),
        ("sealed with HKDF info 'decryption'", _sealed_with(lambda t, s: envelope.hkdf(s, info=b"decryption"))),
        ("sealed with HKDF and an empty info", _sealed_with(lambda t, s: envelope.hkdf(s, info=b""))),
        ("sealed with HKDF salted with the ephemeral key",
         _sealed_with(lambda t, s: envelope.hkdf(s, salt=t.sealed.ephemeral_public_key))),
    ],
    "WrongAad": [
        ("sealed with AAD = ephemeralPublicKey",
         _sealed_with(lambda t, s: envelope.hkdf(s), aad=lambda t: t.sealed.ephemeral_public_key)),
    ],
}


def forgery_cases(ctx: Context) -> list[Case]:
    return [Case(f"{kind}: {name}", _forge(ctx, make), "refuse", "decryption_failed")
            for kind, forgeries in FORGERIES.items() for name, make in forgeries]


# ---- judging -------------------------------------------------------------------------------


def judge(ctx: Context, case: Case) -> str | None:
    """Post the case; None when the answer is what the spec requires, else what went wrong."""
    response = ctx.client.post_raw(case.body, headers=case.headers)
    status = response.status_code
    is_envelope = False
    try:
        body = response.json()
        is_envelope = isinstance(body, dict) and "ciphertext" in body
    except ValueError:
        body = None
    if case.expect == "refuse" or (case.expect == "either" and not is_envelope):
        if status == 200 or is_envelope:
            return f"accepted (HTTP {status}, an encrypted reply): the fault was not refused"
        if not 400 <= status < 500:
            return f"answered HTTP {status}, not a 4xx"
        if not (isinstance(body, dict) and isinstance(body.get("error"), dict) and "ciphertext" not in body):
            return f"answered HTTP {status} without an unencrypted error body"
        return None
    # "accept", or "either" answered with an envelope: the ping must have gone through.
    if status != 200:
        error = body.get("error") if isinstance(body, dict) else None
        return f"refused (HTTP {status}, {error.get('type') if isinstance(error, dict) else str(body)[:80]})"
    target = case.fresh
    try:
        exchange = ctx.client.read_reply(target.plaintext, target.secret, target.sealed, response)
    except ProtocolViolation as violation:
        return f"answered 200 with a reply that does not open: {violation}"
    if not exchange.ok or (exchange.data or {}).get("pong") != target.message:
        return f"the ping did not succeed: {exchange.reply}"
    return None


def require_all(ctx: Context, cases: list[Case], what: str) -> None:
    wrong = [(case.name, problem) for case in cases if (problem := judge(ctx, case)) is not None]
    require(not wrong, f"{len(wrong)} of {len(cases)} {what} answered wrongly; first: {wrong[0][0]}: {wrong[0][1]}"
            if wrong else "", expected="as spec §3.5/§3.6 require", actual=wrong[:20])


def baseline(ctx: Context) -> None:
    """A fresh request in the vectors' layout must be accepted, so each fault fails for itself."""
    target = fresh(ctx)
    problem = judge(ctx, Case("unmodified request", target.body(), "accept", fresh=target))
    if problem:
        raise CheckFailed(f"an unmodified, correctly sealed ping was not accepted: {problem}",
                          expected="200 and the pong", actual=problem)


# ---- checks ----------------------------------------------------------------------------------


@check("envelope/vector-faults", section="3.5", level=Level.MUST,
       requirement="Each invalid body of vectors/envelope_invalid.json, transplanted onto a request sealed to the "
                   "target's key, MUST get an unencrypted 4xx; its valid bodies MUST be accepted; its acceptable "
                   "ones MUST get either (never a 5xx).")
def vector_faults(ctx: Context):
    baseline(ctx)
    require_all(ctx, vector_cases(ctx), "transplanted vector bodies")


@check("envelope/hex-case-accepted", section="3.5", level=Level.MUST,
       requirement="Hex digits a-f and A-F MUST be accepted in any mix of cases, in every member.")
def hex_case_accepted(ctx: Context):
    require_all(ctx, hex_case_cases(ctx), "upper or mixed case requests")


@check("envelope/hex-syntax-rejected", section="3.5", level=Level.MUST,
       requirement="A 0x prefix, a sign, an underscore, any whitespace (leading, trailing, inside; JSON's four and "
                   "every other), a non-ASCII digit, an odd number of digits or a non-hex character in any member "
                   "MUST be rejected with an unencrypted 4xx.")
def hex_syntax_rejected(ctx: Context):
    baseline(ctx)
    require_all(ctx, hex_syntax_cases(ctx), "hex syntax faults")


@check("envelope/json-syntax-rejected", section="3.5", level=Level.MUST,
       requirement="A body that is not exactly one JSON object (bytes after it, two objects, non-JSON whitespace) "
                   "MUST be rejected with an unencrypted 4xx.")
def json_syntax_rejected(ctx: Context):
    baseline(ctx)
    require_all(ctx, json_syntax_cases(ctx), "JSON syntax faults")


@check("envelope/duplicate-members-rejected", section="3.5", level=Level.MUST,
       requirement="A member name twice in any object of the body MUST be rejected, in either order of the copies.")
def duplicate_members_rejected(ctx: Context):
    baseline(ctx)
    require_all(ctx, duplicate_cases(ctx), "duplicate member bodies")


@check("envelope/lengths-rejected", section="3.5", level=Level.MUST,
       requirement="ephemeralPublicKey of any length but 32 bytes, nonce of any length but 24, ciphertext under 16 "
                   "MUST be rejected, even when padding or truncation would recover the sealed value.")
def lengths_rejected(ctx: Context):
    baseline(ctx)
    require_all(ctx, length_cases(ctx), "wrong lengths")


@check("envelope/body-limit", section="3.5", level=Level.MUST,
       requirement="A body of exactly 1 MiB MUST NOT be refused for its size; one byte more MUST be refused with a 4xx.")
def body_limit(ctx: Context):
    require_all(ctx, size_cases(ctx), "bodies at the size limit")


@check("envelope/forgeries-rejected", section="3.2", level=Level.MUST,
       requirement="Requests built on the target's key but tampered after sealing, or sealed with a wrong KDF or AAD, "
                   "MUST fail authentication with an unencrypted 4xx.")
def forgeries_rejected(ctx: Context):
    baseline(ctx)
    require_all(ctx, forgery_cases(ctx), "forgeries")


@check("envelope/forgeries-indistinguishable", section="4.4", level=Level.MUST,
       requirement="Every request that fails authentication MUST get the same answer, status and body byte for byte, "
                   "whatever was forged (which byte, which field, which KDF).")
def forgeries_indistinguishable(ctx: Context):
    answers: dict[tuple[int, bytes], list[str]] = {}
    for case in forgery_cases(ctx) + forgery_cases(ctx):  # each kind twice, with different requests
        response = ctx.client.post_raw(case.body)
        answers.setdefault((response.status_code, response.content), []).append(case.name)
    require(len(answers) == 1, "failed authentications are told apart by their answers",
            expected="one answer for every forgery",
            actual=[{"status": s, "body": b[:200].decode("utf-8", "replace"), "cases": names[:4]}
                    for (s, b), names in answers.items()][:6])


@check("envelope/run-response-members", section="3.1", level=Level.MUST, tags=("final",),
       requirement="Every response envelope of the run MUST have exactly the members ephemeralPublicKey (32 bytes), "
                   "nonce (24) and ciphertext (at least 16), as hex strings, and every envelope POST answered 200 "
                   "MUST be such an envelope.")
def run_response_members(ctx: Context):
    top_up_record(ctx)
    wrong = []
    for answer in ctx.client.answers:
        body = answer.json
        looks_like_envelope = isinstance(body, dict) and bool(ENVELOPE_MEMBERS & set(body))
        envelope_post = answer.method == "POST" and answer.path in ENVELOPE_PATHS and answer.status == 200
        if not (looks_like_envelope or envelope_post):
            continue
        if not isinstance(body, dict) or set(body) != ENVELOPE_MEMBERS:
            wrong.append(f"HTTP {answer.status}: members {sorted(body) if isinstance(body, dict) else str(body)[:60]}")
        elif answer.response_envelope is None:
            wrong.append(f"HTTP {answer.status}: members are not hex of the right lengths: {str(body)[:120]}")
        elif answer.status != 200:
            wrong.append(f"an envelope with HTTP {answer.status} (an encrypted reply is answered 200)")
    require(not wrong, f"{len(wrong)} response envelopes of the run are malformed", expected="exactly three hex members",
            actual=wrong[:10])
