"""Mutation engine for attestation documents (spec 8.7).

Builds a valid document from a throw-away test PKI (:mod:`.testpki`), then mutants at the four
layers of spec 8.7 -- envelope, payload, certificates, semantics -- re-signed with the test leaf
so they get past the signature check and reach the check they aim at. Every mutant carries its
expected verdict: the :class:`ErrorCode` the verifier must raise, or ``None`` when the mutant is
still a valid document (boundary sizes, high-S, tag 18) and must be accepted.

``python -m harness.attestation.mutate`` runs them all and prints, per layer: mutants tried,
rejected for the right reason, rejected for another reason, wrongly accepted, wrongly rejected.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import struct
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from .codec import PROTECTED_ES384
from .errors import AttestationError
from .errors import ErrorCode as E
from .testpki import TestPki, ca_specs, leaf_spec, new_key
from .verifier import Expectations, verify

P384_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973
LAYERS = ("envelope", "payload", "certificates", "semantics")


@dataclass(frozen=True)
class Mutant:
    id: str  # layer/kind/detail, unique
    layer: str
    document: bytes = field(repr=False)
    expected: E | None  # None: a valid document that must be accepted
    roots: tuple[bytes, ...] = field(repr=False)
    at: _dt.datetime
    expect: Expectations = field(repr=False)


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    actual: E | None
    verdict: str  # "ok" | "wrong-check" | "wrongly-accepted" | "wrongly-rejected" | "crash"
    detail: str = ""


# --- raw CBOR pieces ------------------------------------------------------------------------------
# cbor2 only writes preferred encodings; mutants need the other ones (non-minimal and
# indefinite heads, duplicate keys, stray bytes), so heads are written by hand here.

def head(major: int, arg: int, width: int | None = None) -> bytes:
    if width is None:
        width = 0 if arg < 24 else 1 if arg < 2**8 else 2 if arg < 2**16 else 4 if arg < 2**32 else 8
    if width == 0:
        return bytes([major << 5 | arg])
    info = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes([major << 5 | info]) + arg.to_bytes(width, "big")


def bstr(b: bytes) -> bytes:
    return head(2, len(b)) + b


def enc(v: Any) -> bytes:
    return cbor2.dumps(v)


def cmap(pairs: Sequence[tuple[bytes, bytes]], *, indefinite: bool = False) -> bytes:
    body = b"".join(k + v for k, v in pairs)
    return (b"\xbf" + body + b"\xff") if indefinite else head(5, len(pairs)) + body


def uint64(v: int) -> bytes:
    return b"\x1b" + struct.pack(">Q", v)


# --- the base document ---------------------------------------------------------------------------

def _sig_structure(protected: bytes, payload: bytes, context: str = "Signature1", aad: bytes = b"") -> bytes:
    return enc([context, protected, aad, payload])


def raw_sig(key, msg: bytes, hash_alg: Any = None) -> bytes:
    r, s = decode_dss_signature(key.sign(msg, ec.ECDSA(hash_alg or hashes.SHA384())))
    size = (key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


@dataclass
class Base:
    """A valid document's parts, so mutants can rebuild it with one thing changed."""

    pki: TestPki
    now: _dt.datetime
    pcrs: dict[int, bytes]
    public_key: bytes
    user_data: bytes
    nonce: bytes

    @property
    def timestamp(self) -> int:
        return int(self.now.timestamp() * 1000)

    def fields(self, pki: TestPki | None = None) -> list[tuple[str, bytes]]:
        pki = pki or self.pki
        return [
            ("module_id", enc("i-0123456789abcdef0-enc0123456789abcdef")),
            ("digest", enc("SHA384")),
            ("timestamp", uint64(self.timestamp)),
            ("pcrs", enc(self.pcrs)),
            ("certificate", bstr(pki.leaf_der)),
            ("cabundle", enc(pki.cabundle)),
            ("public_key", bstr(self.public_key)),
            ("user_data", bstr(self.user_data)),
            ("nonce", bstr(self.nonce)),
        ]

    def payload(self, fields: list[tuple[str | bytes, bytes]] | None = None, **overrides: bytes) -> bytes:
        pairs = []
        for k, v in fields if fields is not None else self.fields():
            key = enc(k) if isinstance(k, str) else k
            pairs.append((key, overrides.get(k, v) if isinstance(k, str) else v))
        return cmap(pairs)

    def expect(self, **kw: Any) -> Expectations:
        base = dict(pcrs=[{i: self.pcrs[i] for i in (0, 1, 2, 8)}], nonce=self.nonce, public_key=self.public_key,
                    user_data=self.user_data)
        base.update(kw)
        return Expectations(**base)

    def sign(self, payload: bytes, *, key=None, protected: bytes = PROTECTED_ES384, unprotected: bytes = b"\xa0",
             signature: bytes | None = None, prefix: bytes = b"") -> bytes:
        key = key or self.pki.leaf_key
        sig = signature if signature is not None else raw_sig(key, _sig_structure(protected, payload))
        return prefix + head(4, 4) + bstr(protected) + unprotected + bstr(payload) + bstr(sig)


def make_base(now: _dt.datetime) -> Base:
    now = now.replace(microsecond=0)
    pcrs = {i: bytes([0x10 + i]) * 48 for i in range(16)}
    pcrs[3] = bytes(48)  # like AWS: unused PCRs are zero; PCR0 is not
    return Base(TestPki.generate(now), now, pcrs, b"\x04" + b"P" * 96, b"U" * 48, b"N" * 32)


# --- mutant generators, one per layer ------------------------------------------------------------

class _Collector:
    def __init__(self, base: Base, layer: str):
        self.base, self.layer, self.items = base, layer, []

    def add(self, name: str, document: bytes, expected: E | None, *, expect: Expectations | None = None,
            roots: Sequence[bytes] | None = None, at: _dt.datetime | None = None) -> None:
        self.items.append(
            Mutant(
                id=f"{self.layer}/{name}",
                layer=self.layer,
                document=document,
                expected=expected,
                roots=tuple(roots) if roots is not None else (self.base.pki.root_pem,),
                at=at or self.base.now,
                expect=expect or self.base.expect(),
            )
        )


def envelope_mutants(b: Base) -> list[Mutant]:
    c = _Collector(b, "envelope")
    payload = b.payload()
    good = b.sign(payload)
    c.add("control/valid", good, None)
    c.add("tag/18-one-byte", b.sign(payload, prefix=b"\xd2"), None)
    for name, prefix in [("18-two-byte", b"\xd8\x12"), ("16", b"\xd0"), ("17", b"\xd1"), ("19", b"\xd3"),
                         ("0", b"\xc0"), ("1", b"\xc1"), ("2", b"\xc2"), ("24", b"\xd8\x18"), ("61", b"\xd8\x3d"),
                         ("98", b"\xd8\x62"), ("55799", b"\xd9\xd9\xf7"), ("18-twice", b"\xd2\xd2"),
                         ("18-18-two-byte", b"\xd2\xd8\x12"), ("big", b"\xdb" + (2**40).to_bytes(8, "big"))]:
        c.add(f"tag/{name}", b.sign(payload, prefix=prefix), E.CBOR_FORBIDDEN_TAG)
    # arity and top-level type
    parts = [bstr(PROTECTED_ES384), b"\xa0", bstr(payload), bstr(raw_sig(b.pki.leaf_key, _sig_structure(PROTECTED_ES384, payload)))]
    for n in (0, 1, 2, 3):
        c.add(f"arity/{n}", head(4, n) + b"".join(parts[:n]), E.COSE_STRUCTURE)
    c.add("arity/5", head(4, 5) + b"".join(parts) + b"\xf6", E.COSE_STRUCTURE)
    c.add("arity/6", head(4, 6) + b"".join(parts) + b"\xa0\x40", E.COSE_STRUCTURE)
    c.add("arity/nested", head(4, 1) + head(4, 4) + b"".join(parts), E.COSE_STRUCTURE)
    for name, doc in [("map", enc({1: 2})), ("bstr", bstr(good)), ("int", enc(7)), ("text", enc("COSE")),
                      ("null", b"\xf6"), ("true", b"\xf5")]:
        c.add(f"top-level/{name}", doc, E.COSE_STRUCTURE)
    c.add("head/non-minimal-array", b"\x98\x04" + b"".join(parts), None)  # well-formed; outside the signature
    c.add("head/indefinite-array", b"\x9f" + b"".join(parts) + b"\xff", E.CBOR_INDEFINITE_LENGTH)
    c.add("head/indefinite-payload", head(4, 4) + parts[0] + parts[1] + b"\x5f" + bstr(payload) + b"\xff" + parts[3],
          E.CBOR_INDEFINITE_LENGTH)
    # protected header (re-signed over the mutated bytes)
    for name, prot in [("alg-es256", "a10126"), ("alg-es512", "a1013823"), ("alg-ps256", "a1013824"),
                       ("alg-eddsa", "a10127"), ("alg-a128gcm", "a10101"), ("alg-text", "a101654553333834"),
                       ("empty", ""), ("empty-map", "a0"), ("with-kid", "a20138220441aa"),
                       ("non-minimal-alg", "a101390022"), ("alg-key-text", "a163616c673822"),
                       ("alg-positive-35", "a1011823"), ("crit", "a201382202810f"), ("trailing", "a101382200")]:
        protected = bytes.fromhex(prot)
        c.add(f"protected/{name}", b.sign(payload, protected=protected), E.COSE_PROTECTED)
    for name, raw in [("map-not-bstr", "a1013822"), ("text", enc("a1013822").hex()), ("null", "f6")]:
        doc = head(4, 4) + bytes.fromhex(raw) + b"\xa0" + bstr(payload) + parts[3]
        c.add(f"protected/{name}", doc, E.COSE_PROTECTED)
    # unprotected header
    for name, raw in [("alg", "a1013822"), ("kid", "a10441aa"), ("text-key", "a1617801"), ("bstr", "40"),
                      ("null", "f6"), ("array", "80"), ("x5chain", "a1182140")]:
        c.add(f"unprotected/{name}", b.sign(payload, unprotected=bytes.fromhex(raw)), E.COSE_UNPROTECTED)
    c.add("unprotected/duplicate-key", b.sign(payload, unprotected=bytes.fromhex("a2044101044101")), E.CBOR_DUPLICATE_KEY)
    c.add("unprotected/float", b.sign(payload, unprotected=bytes.fromhex("a101f93e00")), E.CBOR_FORBIDDEN_ITEM)
    c.add("unprotected/undefined", b.sign(payload, unprotected=bytes.fromhex("a101f7")), E.CBOR_FORBIDDEN_ITEM)
    c.add("unprotected/simple", b.sign(payload, unprotected=bytes.fromhex("a101f0")), E.CBOR_FORBIDDEN_ITEM)
    c.add("unprotected/array-key", b.sign(payload, unprotected=bytes.fromhex("a18001")), E.CBOR_FORBIDDEN_ITEM)
    c.add("unprotected/bad-utf8", b.sign(payload, unprotected=bytes.fromhex("a16178 62c328".replace(" ", ""))),
          E.CBOR_MALFORMED)
    c.add("unprotected/deep", b.sign(payload, unprotected=b"\xa1\x01" + b"\x81" * 20 + b"\x00"), E.CBOR_TOO_DEEP)
    c.add("unprotected/reserved-head", b.sign(payload, unprotected=b"\xa1\x01\x1c"), E.CBOR_MALFORMED)
    c.add("unprotected/stray-break", b.sign(payload, unprotected=b"\xa1\x01\xff"), E.CBOR_MALFORMED)
    # payload slot
    for name, raw, code in [("text", enc("payload"), E.COSE_PAYLOAD), ("null", b"\xf6", E.COSE_PAYLOAD),
                            ("empty", b"\x40", E.COSE_PAYLOAD), ("map", payload, E.COSE_PAYLOAD)]:
        doc = head(4, 4) + parts[0] + parts[1] + raw + parts[3]
        c.add(f"payload-slot/{name}", doc, code)
    # payload size boundary: pad module_id so the payload is exactly 16384 / 16385 bytes
    for size, code in [(16384, None), (16385, E.COSE_PAYLOAD)]:
        fields = b.fields()
        short = len(b.payload(fields, module_id=enc("")))
        pad = size - short
        mid = "m" * (pad + 1 - len(head(3, pad)))  # enc("") is 1 byte, a 256..65535-byte text has a 3-byte head
        p = b.payload(fields, module_id=enc(mid))
        assert len(p) == size, (len(p), size)
        c.add(f"payload-size/{size}", b.sign(p), code)
    # signature slot
    sig = parts[3][2:]
    for n in (0, 1, 32, 47, 48, 64, 94, 95, 97, 98, 102, 104, 128, 192):
        s = (sig * 3)[:n]
        c.add(f"signature/length-{n}", head(4, 4) + b"".join(parts[:3]) + bstr(s), E.COSE_SIGNATURE_LENGTH)
    r, s = int.from_bytes(sig[:48], "big"), int.from_bytes(sig[48:], "big")
    der = encode_dss_signature(r, s)
    c.add("signature/der", head(4, 4) + b"".join(parts[:3]) + bstr(der), E.COSE_SIGNATURE_LENGTH)
    for name, raw in [("text", enc("sig")), ("null", b"\xf6"), ("int", enc(1)), ("array", enc([sig[:48], sig[48:]]))]:
        c.add(f"signature/{name}", head(4, 4) + b"".join(parts[:3]) + raw, E.COSE_SIGNATURE_LENGTH)

    def with_sig(raw96: bytes) -> bytes:
        return head(4, 4) + b"".join(parts[:3]) + bstr(raw96)

    c.add("signature/high-s", with_sig(sig[:48] + (P384_N - s).to_bytes(48, "big")), None)
    for name, raw in [
        ("zero", bytes(96)),
        ("ones", b"\xff" * 96),
        ("r-zero", bytes(48) + sig[48:]),
        ("s-zero", sig[:48] + bytes(48)),
        ("r-minus-1", (r - 1).to_bytes(48, "big") + sig[48:]),
        ("s-plus-1", sig[:48] + ((s + 1) % P384_N).to_bytes(48, "big")),
        ("r-equals-n", P384_N.to_bytes(48, "big") + sig[48:]),
        ("s-equals-n", sig[:48] + P384_N.to_bytes(48, "big")),
        ("swapped", sig[48:] + sig[:48]),
        ("negated-r", (P384_N - r).to_bytes(48, "big") + sig[48:]),
        ("little-endian", sig[:48][::-1] + sig[48:][::-1]),
        ("other-key", raw_sig(new_key(), _sig_structure(PROTECTED_ES384, payload))),
        ("intermediate-key", raw_sig(b.pki.keys[-2], _sig_structure(PROTECTED_ES384, payload))),
        ("root-key", raw_sig(b.pki.keys[0], _sig_structure(PROTECTED_ES384, payload))),
        ("sha256", raw_sig(b.pki.leaf_key, _sig_structure(PROTECTED_ES384, payload), hashes.SHA256())),
        ("sha512", raw_sig(b.pki.leaf_key, _sig_structure(PROTECTED_ES384, payload), hashes.SHA512())),
        ("raw-payload", raw_sig(b.pki.leaf_key, payload)),
        ("context-signature", raw_sig(b.pki.leaf_key, _sig_structure(PROTECTED_ES384, payload, "Signature"))),
        ("external-aad", raw_sig(b.pki.leaf_key, _sig_structure(PROTECTED_ES384, payload, aad=b"x"))),
        ("empty-protected", raw_sig(b.pki.leaf_key, _sig_structure(b"", payload))),
        ("other-payload", raw_sig(b.pki.leaf_key, _sig_structure(PROTECTED_ES384, payload + b"\x00"))),
    ]:
        c.add(f"signature/{name}", with_sig(raw), E.COSE_SIGNATURE)
    # trailing bytes and truncation of the whole document
    for name, tail in [("zero", b"\x00"), ("null", b"\xf6"), ("break", b"\xff"), ("empty-array", b"\x80"),
                       ("second-document", good), ("garbage", b"\x01\x02\x03")]:
        c.add(f"trailing/{name}", good + tail, E.CBOR_TRAILING_BYTES)
    cut_points = sorted(set(list(range(12)) + list(range(12, len(good), max(1, len(good) // 48)))
                            + [len(good) - 1, len(good) - 96, len(good) - 97]))
    for n in cut_points:
        c.add(f"truncated/{n}", good[:n], E.CBOR_MALFORMED)
    return c.items


def payload_mutants(b: Base) -> list[Mutant]:
    c = _Collector(b, "payload")
    fields = b.fields()
    relaxed = {"public_key": b.expect(public_key=None), "user_data": b.expect(user_data=None),
               "nonce": b.expect(nonce=None)}
    field_code = {
        "module_id": E.FIELD_MODULE_ID, "digest": E.FIELD_DIGEST, "timestamp": E.FIELD_TIMESTAMP,
        "pcrs": E.FIELD_PCRS, "certificate": E.FIELD_CERTIFICATE, "cabundle": E.FIELD_CABUNDLE,
        "public_key": E.FIELD_PUBLIC_KEY, "user_data": E.FIELD_USER_DATA, "nonce": E.FIELD_NONCE,
    }
    policy_code = {"public_key": E.POLICY_PUBLIC_KEY, "user_data": E.POLICY_USER_DATA, "nonce": E.POLICY_NONCE}
    sign = b.sign
    # keys: missing, duplicated, unknown, out of order
    for i, (k, _) in enumerate(fields):
        c.add(f"missing/{k}", sign(b.payload(fields[:i] + fields[i + 1:])), E.PAYLOAD_MISSING_KEY)
        c.add(f"duplicate/{k}", sign(b.payload(fields + [fields[i]])), E.CBOR_DUPLICATE_KEY)
        c.add(f"duplicate-adjacent/{k}", sign(b.payload(fields[: i + 1] + [fields[i]] + fields[i + 1:])),
              E.CBOR_DUPLICATE_KEY)
    for name, key in [("extra", enc("extra")), ("capitalised", enc("Nonce")), ("dashed", enc("module-id")),
                      ("empty", enc("")), ("int", enc(1)), ("bytes", enc(b"nonce")), ("negative", enc(-1))]:
        c.add(f"unknown-key/{name}", sign(b.payload(fields + [(key, b"\xf6")])), E.PAYLOAD_UNKNOWN_KEY)
    for i in range(len(fields) - 1):
        swapped = fields[:i] + [fields[i + 1], fields[i]] + fields[i + 2:]
        c.add(f"order/swap-{fields[i][0]}-{fields[i + 1][0]}", sign(b.payload(swapped)), E.PAYLOAD_KEY_ORDER)
    c.add("order/reversed", sign(b.payload(fields[::-1])), E.PAYLOAD_KEY_ORDER)
    c.add("order/rotated", sign(b.payload(fields[1:] + fields[:1])), E.PAYLOAD_KEY_ORDER)
    c.add("order/sorted", sign(b.payload(sorted(fields))), E.PAYLOAD_KEY_ORDER)
    # nulls
    for k, _ in fields:
        if k in policy_code:
            c.add(f"null/{k}", sign(b.payload(fields, **{k: b"\xf6"})), policy_code[k])
            c.add(f"null-relaxed/{k}", sign(b.payload(fields, **{k: b"\xf6"})), None, expect=relaxed[k])
        else:
            c.add(f"null/{k}", sign(b.payload(fields, **{k: b"\xf6"})), field_code[k])
    # wrong types
    wrong = {"uint": enc(7), "nint": enc(-7), "text": enc("x"), "bytes": enc(b"x"), "array": enc([]),
             "map": enc({}), "true": b"\xf5", "false": b"\xf4"}
    right = {"module_id": {"text"}, "digest": set(), "timestamp": {"uint"}, "pcrs": set(), "certificate": {"bytes"},
             "cabundle": set(), "public_key": {"bytes"}, "user_data": {"bytes"}, "nonce": {"bytes"}}
    for k, _ in fields:
        for tname, raw in wrong.items():
            if tname in right[k]:
                continue
            c.add(f"type/{k}-{tname}", sign(b.payload(fields, **{k: raw})), field_code[k])
        c.add(f"type/{k}-float", sign(b.payload(fields, **{k: b"\xfb" + struct.pack(">d", 1.5)})),
              E.CBOR_FORBIDDEN_ITEM)
        c.add(f"type/{k}-undefined", sign(b.payload(fields, **{k: b"\xf7"})), E.CBOR_FORBIDDEN_ITEM)
        c.add(f"tag/{k}", sign(b.payload(fields, **{k: b"\xd8\x18" + dict(fields)[k]})), E.CBOR_FORBIDDEN_TAG)
    # indefinite lengths
    fd = dict(fields)
    c.add("indefinite/map", sign(cmap([(enc(k), v) for k, v in fields], indefinite=True)), E.CBOR_INDEFINITE_LENGTH)
    c.add("indefinite/module_id", sign(b.payload(fields, module_id=b"\x7f" + fd["module_id"] + b"\xff")),
          E.CBOR_INDEFINITE_LENGTH)
    c.add("indefinite/certificate", sign(b.payload(fields, certificate=b"\x5f" + fd["certificate"] + b"\xff")),
          E.CBOR_INDEFINITE_LENGTH)
    c.add("indefinite/cabundle", sign(b.payload(fields, cabundle=b"\x9f" + fd["cabundle"][1:] + b"\xff")),
          E.CBOR_INDEFINITE_LENGTH)
    c.add("indefinite/pcrs", sign(b.payload(fields, pcrs=b"\xbf" + fd["pcrs"][1:] + b"\xff")),
          E.CBOR_INDEFINITE_LENGTH)
    c.add("indefinite/nonce-chunked", sign(b.payload(fields, nonce=b"\x5f" + bstr(b.nonce[:16]) + bstr(b.nonce[16:]) + b"\xff")),
          E.CBOR_INDEFINITE_LENGTH)
    # trailing bytes, truncation, non-map payloads
    good = b.payload(fields)
    for name, tail in [("zero", b"\x00"), ("null", b"\xf6"), ("map", b"\xa0"), ("copy", good)]:
        c.add(f"trailing/{name}", sign(good + tail), E.CBOR_TRAILING_BYTES)
    for n in (1, 2, 10, 100, len(good) // 2, len(good) - 1):
        c.add(f"truncated/{n}", sign(good[:n]), E.CBOR_MALFORMED)
    for name, raw in [("array", enc([1])), ("text", enc("doc")), ("int", enc(1)), ("null", b"\xf6"),
                      ("array-of-pairs", enc([["module_id", "x"]]))]:
        c.add(f"not-a-map/{name}", sign(raw), E.PAYLOAD_NOT_MAP)
    # digest
    for name, raw in [("lower", "sha384"), ("sha256", "SHA256"), ("sha512", "SHA512"), ("empty", ""),
                      ("nul", "SHA384\x00"), ("dash", "SHA-384"), ("space", "SHA384 ")]:
        c.add(f"digest/{name}", sign(b.payload(fields, digest=enc(raw))), E.FIELD_DIGEST)
    c.add("digest/bytes", sign(b.payload(fields, digest=enc(b"SHA384"))), E.FIELD_DIGEST)
    c.add("module_id/empty", sign(b.payload(fields, module_id=enc(""))), E.FIELD_MODULE_ID)
    c.add("module_id/non-ascii", sign(b.payload(fields, module_id=enc("i-é"))), None)
    # timestamp
    ts = b.timestamp
    c.add("timestamp/zero", sign(b.payload(fields, timestamp=enc(0))), E.FIELD_TIMESTAMP)
    c.add("timestamp/zero-uint64", sign(b.payload(fields, timestamp=uint64(0))), E.FIELD_TIMESTAMP)
    c.add("timestamp/negative", sign(b.payload(fields, timestamp=enc(-1))), E.FIELD_TIMESTAMP)
    c.add("timestamp/negative-now", sign(b.payload(fields, timestamp=enc(-ts))), E.FIELD_TIMESTAMP)
    c.add("timestamp/float", sign(b.payload(fields, timestamp=b"\xfb" + struct.pack(">d", float(ts)))),
          E.CBOR_FORBIDDEN_ITEM)
    c.add("timestamp/half-float", sign(b.payload(fields, timestamp=b"\xf9\x3c\x00")), E.CBOR_FORBIDDEN_ITEM)
    c.add("timestamp/bignum", sign(b.payload(fields, timestamp=b"\xc2" + bstr(ts.to_bytes(8, "big")))),
          E.CBOR_FORBIDDEN_TAG)
    c.add("timestamp/epoch-tag", sign(b.payload(fields, timestamp=b"\xc1" + uint64(ts // 1000))), E.CBOR_FORBIDDEN_TAG)
    c.add("timestamp/text", sign(b.payload(fields, timestamp=enc(str(ts)))), E.FIELD_TIMESTAMP)
    c.add("timestamp/max-uint64", sign(b.payload(fields, timestamp=uint64(2**64 - 1))), E.POLICY_FUTURE)
    c.add("timestamp/one", sign(b.payload(fields, timestamp=uint64(1))), E.POLICY_STALE)
    c.add("timestamp/seconds-not-ms", sign(b.payload(fields, timestamp=uint64(ts // 1000))), E.POLICY_STALE)
    # pcrs
    pcrs = b.pcrs
    def with_pcrs(m: dict) -> bytes:
        return sign(b.payload(fields, pcrs=enc(m)))
    c.add("pcrs/empty", with_pcrs({}), E.FIELD_PCRS)
    c.add("pcrs/33-entries", with_pcrs({**pcrs, **{i: bytes(48) for i in range(16, 33)}}), E.FIELD_PCRS)
    c.add("pcrs/32-entries", with_pcrs({**pcrs, **{i: bytes(48) for i in range(16, 32)}}), None)
    c.add("pcrs/one-entry", with_pcrs({0: pcrs[0]}), E.POLICY_PCRS)
    c.add("pcrs/one-entry-relaxed", with_pcrs({0: pcrs[0]}), None, expect=b.expect(pcrs=None))
    for name, idx in [("-1", -1), ("32", 32), ("1000", 1000), ("text-0", "0"), ("bytes-0", b"\x00"),
                      ("2**64-1", 2**64 - 1), ("-2**64", -(2**64))]:
        c.add(f"pcr-index/{name}", with_pcrs({**pcrs, idx: bytes(48)}), E.FIELD_PCR_INDEX)
    c.add("pcr-index/31", with_pcrs({**pcrs, 31: bytes(48)}), None)
    c.add("pcr-index/non-minimal-0", sign(b.payload(fields, pcrs=head(5, 1) + b"\x18\x00" + bstr(pcrs[0]))), None,
          expect=b.expect(pcrs=[{0: pcrs[0]}]))
    c.add("pcr-index/duplicate-non-minimal", sign(b.payload(fields, pcrs=head(5, 2) + b"\x00" + bstr(pcrs[0])
                                                            + b"\x18\x00" + bstr(pcrs[0]))), E.CBOR_DUPLICATE_KEY)
    for n in (0, 1, 31, 33, 47, 49, 63, 65, 96, 1024):
        c.add(f"pcr-length/pcr0-{n}", with_pcrs({**pcrs, 0: b"\x01" * n}), E.FIELD_PCR_LENGTH)
    for n in (32, 64):
        c.add(f"pcr-length/pcr0-{n}", with_pcrs({**pcrs, 0: b"\x01" * n}), E.POLICY_PCRS)
        c.add(f"pcr-length/pcr5-{n}", with_pcrs({**pcrs, 5: b"\x01" * n}), None)
    for name, raw in [("text", enc("00" * 48)), ("null", b"\xf6"), ("array", enc([bytes(48)]))]:
        c.add(f"pcr-value/{name}", sign(b.payload(fields, pcrs=head(5, 1) + b"\x00" + raw)), E.FIELD_PCR_LENGTH)
    # certificate and cabundle sizes
    leaf = b.pki.leaf_der
    for name, raw, code in [("empty", b"", E.FIELD_CERTIFICATE), ("1025", b"\x30" * 1025, E.FIELD_CERTIFICATE),
                            ("2000", b"\x30" * 2000, E.FIELD_CERTIFICATE), ("garbage", b"\x01" * 10, E.CERT_PARSE),
                            ("truncated", leaf[:-1], E.CERT_PARSE), ("trailing", leaf + b"\x00", E.CERT_PARSE),
                            ("1024-garbage", b"\x30" * 1024, E.CERT_PARSE), ("pem", b.pki.certs[-1].public_bytes(Encoding.PEM)[:1024], E.CERT_PARSE)]:
        c.add(f"certificate/{name}", sign(b.payload(fields, certificate=bstr(raw))), code)
    bundle = b.pki.cabundle
    for name, raw in [("empty", []), ("entry-empty", bundle + [b""]), ("entry-1025", bundle[:1] + [b"\x30" * 1025] + bundle[1:]),
                      ("root-empty", [b""] + bundle[1:])]:
        c.add(f"cabundle/{name}", sign(b.payload(fields, cabundle=enc(raw))), E.FIELD_CABUNDLE)
    for name, raw in [("entry-text", bundle[:1] + ["x"]), ("entry-null", bundle[:1] + [None]),
                      ("entry-array", bundle[:1] + [[bundle[1]]]), ("entry-int", bundle[:1] + [5])]:
        c.add(f"cabundle/{name}", sign(b.payload(fields, cabundle=enc(raw))), E.FIELD_CABUNDLE)
    c.add("cabundle/entry-garbage", sign(b.payload(fields, cabundle=enc(bundle[:1] + [b"\x30\x00"] + bundle[1:]))),
          E.CERT_PARSE)
    # optional byte strings: every boundary
    limits = {"public_key": (1, 1024), "user_data": (0, 512), "nonce": (0, 512)}
    for k, (lo, hi) in limits.items():
        for n in sorted({lo, lo + 1, hi - 1, hi}):
            c.add(f"size/{k}-{n}", sign(b.payload(fields, **{k: bstr(b"z" * n)})), None, expect=relaxed[k])
            c.add(f"size/{k}-{n}-policy", sign(b.payload(fields, **{k: bstr(b"z" * n)})), policy_code[k])
        for n in sorted({hi + 1, hi + 2, 2 * hi, 2 * hi + 1} | ({lo - 1} if lo > 0 else set())):
            c.add(f"size/{k}-{n}", sign(b.payload(fields, **{k: bstr(b"z" * n)})), field_code[k], expect=relaxed[k])
    return c.items


def _chain_doc(b: Base, pki: TestPki, *, sign_key=None) -> bytes:
    key = sign_key or pki.leaf_key
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP384R1):
        key = new_key()  # the chain check must fail before the document signature matters
    return b.sign(b.payload(b.fields(pki)), key=key)


def certificate_mutants(b: Base) -> list[Mutant]:
    c = _Collector(b, "certificates")
    now = b.now
    names = ["root", "regional", "zonal", "instance", "leaf"]
    specs = ca_specs(now) + [leaf_spec(now)]

    def chain(i: int | None = None, **changes: Any) -> TestPki:
        s = list(specs)
        if i is not None:
            s[i] = replace(s[i], **changes)
        return TestPki.generate(now, specs=s)

    def add_chain(name: str, pki: TestPki, code: E | None, **kw: Any) -> None:
        c.add(name, _chain_doc(b, pki), code, roots=kw.pop("roots", [pki.root_pem]), **kw)

    add_chain("control/fresh-chain", chain(), None)
    # roots and bundle order
    other = TestPki.generate(now)
    c.add("root/unpinned-chain", _chain_doc(b, other), E.CHAIN_ROOT_MISMATCH)
    c.add("root/aws-pinned", _chain_doc(b, b.pki), E.CHAIN_ROOT_MISMATCH, roots=[_aws_root_pem()])
    c.add("root/several-pinned-ours-second", _chain_doc(b, b.pki), None, roots=[_aws_root_pem(), b.pki.root_pem])
    p = b.pki

    def with_bundle(bundle: list[bytes], leaf: bytes | None = None, key=None) -> bytes:
        fields = b.payload(b.fields(), cabundle=enc(bundle), certificate=bstr(leaf or p.leaf_der))
        return b.sign(fields, key=key)

    cab = p.cabundle
    c.add("bundle/root-missing", with_bundle(cab[1:]), E.CHAIN_ROOT_MISMATCH)
    c.add("bundle/root-last", with_bundle(cab[1:] + cab[:1]), E.CHAIN_ROOT_MISMATCH)
    c.add("bundle/reversed", with_bundle(cab[::-1]), E.CHAIN_ROOT_MISMATCH)
    c.add("bundle/swap-regional-zonal", with_bundle([cab[0], cab[2], cab[1], cab[3]]), E.CERT_ISSUER_MISMATCH)
    c.add("bundle/swap-zonal-instance", with_bundle([cab[0], cab[1], cab[3], cab[2]]), E.CERT_ISSUER_MISMATCH)
    for i in (1, 2, 3):
        c.add(f"bundle/missing-{names[i]}", with_bundle(cab[:i] + cab[i + 1:]), E.CERT_ISSUER_MISMATCH)
        c.add(f"bundle/duplicate-{names[i]}", with_bundle(cab[: i + 1] + cab[i:]), E.CHAIN_DUPLICATE_CERT)
    c.add("bundle/only-root", with_bundle(cab[:1]), E.CERT_ISSUER_MISMATCH)
    c.add("bundle/root-twice", with_bundle(cab[:1] + cab), E.CHAIN_DUPLICATE_CERT)
    # one CA too many: the regional CA's pathLen (checked top-down) fails before the foreign issuer
    c.add("bundle/extra-foreign-cert", with_bundle(cab + other.cabundle[1:2]), E.CERT_PATH_LENGTH)
    c.add("bundle/foreign-instance-renamed",
          with_bundle(cab[:3] + [_renamed_instance(b)], p.leaf_der), E.CERT_ISSUER_MISMATCH)
    c.add("bundle/leaf-in-bundle", with_bundle(cab + [p.leaf_der]), E.CHAIN_DUPLICATE_CERT)
    c.add("bundle/foreign-intermediates", with_bundle(cab[:1] + other.cabundle[1:], other.leaf_der, other.leaf_key),
          E.CERT_SIGNATURE)
    c.add("bundle/foreign-leaf", with_bundle(cab, other.leaf_der, other.leaf_key), E.CERT_SIGNATURE)
    c.add("bundle/leaf-is-instance", with_bundle(cab[:3], cab[3], p.keys[3]), E.CERT_LEAF_CONSTRAINTS)
    # validity, at every level and at the leaf's boundaries
    sec = _dt.timedelta(seconds=1)
    for i, name in enumerate(names):
        add_chain(f"expired/{name}", chain(i, not_before=now - _dt.timedelta(days=2), not_after=now - sec),
                  E.CERT_EXPIRED)
        add_chain(f"not-yet-valid/{name}", chain(i, not_before=now + sec, not_after=now + _dt.timedelta(days=2)),
                  E.CERT_NOT_YET_VALID)
        add_chain(f"validity-edge/{name}-ends-now", chain(i, not_after=now), None)
        add_chain(f"validity-edge/{name}-starts-now", chain(i, not_before=now), None)
    # constraints on CAs
    for i in (1, 2, 3):
        n = names[i]
        add_chain(f"ca/{n}-ca-false", chain(i, ca=False, path_length=None), E.CERT_CA_CONSTRAINTS)
        add_chain(f"ca/{n}-bc-non-critical", chain(i, basic_critical=False), E.CERT_CA_CONSTRAINTS)
        add_chain(f"ca/{n}-bc-absent", chain(i, basic_constraints=False), E.CERT_CA_CONSTRAINTS)
        add_chain(f"ca/{n}-no-keycertsign", chain(i, key_usage=frozenset({"digital_signature", "crl_sign"})),
                  E.CERT_CA_KEY_USAGE)
        add_chain(f"ca/{n}-ku-absent", chain(i, key_usage=None), E.CERT_CA_KEY_USAGE)
    add_chain("ca/root-ca-false", chain(0, ca=False), E.CERT_CA_CONSTRAINTS)
    add_chain("ca/root-no-keycertsign", chain(0, key_usage=frozenset({"digital_signature"})), E.CERT_CA_KEY_USAGE)
    add_chain("pathlen/root-2", chain(0, path_length=2), E.CERT_PATH_LENGTH)
    add_chain("pathlen/root-3", chain(0, path_length=3), None)
    add_chain("pathlen/regional-1", chain(1, path_length=1), E.CERT_PATH_LENGTH)
    add_chain("pathlen/regional-0", chain(1, path_length=0), E.CERT_PATH_LENGTH)
    add_chain("pathlen/regional-3", chain(1, path_length=3), None)
    add_chain("pathlen/zonal-0", chain(2, path_length=0), E.CERT_PATH_LENGTH)
    add_chain("pathlen/zonal-none", chain(2, path_length=None), None)
    extra = specs[:3] + [replace(specs[2], cn="zonal2.test.nitro-enclaves", path_length=1)] + specs[3:]
    add_chain("pathlen/extra-level", TestPki.generate(now, specs=extra), E.CERT_PATH_LENGTH)
    # the leaf
    add_chain("leaf/ca-true", chain(4, ca=True), E.CERT_LEAF_CONSTRAINTS)
    add_chain("leaf/bc-absent", chain(4, basic_constraints=False), E.CERT_LEAF_CONSTRAINTS)
    add_chain("leaf/no-digital-signature", chain(4, key_usage=frozenset({"key_encipherment"})), E.CERT_LEAF_KEY_USAGE)
    add_chain("leaf/ku-absent", chain(4, key_usage=None), E.CERT_LEAF_KEY_USAGE)
    add_chain("leaf/keycertsign-only", chain(4, key_usage=frozenset({"key_cert_sign"})), E.CERT_LEAF_KEY_USAGE)
    for i, name in enumerate(names):
        add_chain(f"extension/{name}-unknown-critical", chain(i, unknown_critical=True), E.CERT_UNKNOWN_CRITICAL)
        add_chain(f"extension/{name}-unknown-non-critical", chain(i, unknown_non_critical=True), None)
    # critical extensions that parse but whose rules the verifier does not enforce
    from cryptography import x509 as _x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    eku = _x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    san = _x509.SubjectAlternativeName([_x509.DNSName("enclave.test")])
    nc = _x509.NameConstraints(permitted_subtrees=[_x509.DNSName("test")], excluded_subtrees=None)
    add_chain("extension/leaf-critical-eku", chain(4, extra=((eku, True),)), E.CERT_UNKNOWN_CRITICAL)
    add_chain("extension/leaf-critical-san", chain(4, extra=((san, True),)), E.CERT_UNKNOWN_CRITICAL)
    add_chain("extension/instance-critical-name-constraints", chain(3, extra=((nc, True),)), E.CERT_UNKNOWN_CRITICAL)
    add_chain("extension/leaf-non-critical-eku", chain(4, extra=((eku, False),)), None)
    # algorithms, keys, versions, names, signers at every level below the root
    for i, name in enumerate(names):
        kinds = ["p384"] * 5
        if i > 0:
            for kind in ("rsa", "p256"):
                k = list(kinds)
                k[i] = kind
                add_chain(f"key/{name}-{kind}", TestPki.generate(now, key_kinds=k), E.CERT_KEY_TYPE)
        code = E.CERT_SIGNATURE_ALGORITHM
        add_chain(f"sigalg/{name}-sha256", chain(i, hash_alg=hashes.SHA256()), code)
        add_chain(f"sigalg/{name}-sha512", chain(i, hash_alg=hashes.SHA512()), code)
        if i > 0:
            add_chain(f"version/{name}-v1", chain(i, version1=True), E.CERT_VERSION)
            add_chain(f"issuer/{name}-renamed",
                      TestPki.generate(now, issuer_override={i: _x509_name("somebody-else")}), E.CERT_ISSUER_MISMATCH)
            add_chain(f"signer/{name}-wrong-key", TestPki.generate(now, signer_override={i: new_key()}),
                      E.CERT_SIGNATURE)
    # fields the certificate builder will not produce wrong: edited in the DER, then re-signed
    def resigned(der: bytes, signer, **tbs_changes: Any) -> bytes:
        return _resign(der, signer, **tbs_changes)

    leaf_signer, instance_signer = p.keys[3], p.keys[2]
    c.add("sigalg/leaf-inner-sha256-outer-sha384",
          with_bundle(cab, resigned(p.leaf_der, leaf_signer, signature="sha256_ecdsa")), E.CERT_SIGNATURE_ALGORITHM)
    c.add("sigalg/instance-inner-sha512-outer-sha384",
          with_bundle(cab[:3] + [resigned(cab[3], instance_signer, signature="sha512_ecdsa")]),
          E.CERT_SIGNATURE_ALGORITHM)
    c.add("serial/leaf-zero", with_bundle(cab, resigned(p.leaf_der, leaf_signer, serial_number=0)), E.CERT_SERIAL)
    c.add("serial/leaf-negative", with_bundle(cab, resigned(p.leaf_der, leaf_signer, serial_number=-5)), E.CERT_SERIAL)
    c.add("serial/leaf-21-octets", with_bundle(cab, resigned(p.leaf_der, leaf_signer, serial_number=1 << 160)),
          E.CERT_SERIAL)
    c.add("serial/instance-21-octets",
          with_bundle(cab[:3] + [resigned(cab[3], instance_signer, serial_number=(1 << 160) + 7)]), E.CERT_SERIAL)
    c.add("serial/leaf-20-octets", with_bundle(cab, resigned(p.leaf_der, leaf_signer, serial_number=(1 << 159) - 1)),
          None)
    # an instance CA with an empty subject, and a leaf naming that empty issuer (so the chain links)
    empty_instance = resigned(cab[3], instance_signer, subject=[])
    empty_leaf = resigned(p.leaf_der, leaf_signer, issuer=[])
    c.add("subject/instance-ca-empty", with_bundle(cab[:3] + [empty_instance], empty_leaf), E.CERT_CA_SUBJECT)
    add_chain("leaf/keycertsign-and-digital-signature",
              chain(4, key_usage=frozenset({"digital_signature", "key_cert_sign"})), E.CERT_LEAF_KEY_USAGE)
    rsa_root = TestPki.generate(now, key_kinds=["rsa"] + ["p384"] * 4)
    add_chain("key/root-rsa", rsa_root, E.CERT_SIGNATURE_ALGORITHM)
    add_chain("key/root-p256", TestPki.generate(now, key_kinds=["p256"] + ["p384"] * 4), E.CERT_KEY_TYPE)
    return c.items


def _resign(der: bytes, signer, *, signature: str | None = None, **tbs_changes: Any) -> bytes:
    """Edit TBSCertificate fields of ``der`` and re-sign it (ES384) with ``signer``.

    ``signature`` replaces only the inner TBSCertificate.signature algorithm; the outer
    signatureAlgorithm stays ecdsa-with-SHA384, so the two disagree (RFC 5280 4.1.1.2)."""
    from asn1crypto import x509 as _asn1

    cert = _asn1.Certificate.load(der)
    tbs = cert["tbs_certificate"].copy()
    for key, value in tbs_changes.items():
        if key in ("subject", "issuer"):
            value = _asn1.Name.build({}) if value == [] else value
        tbs[key] = value
    if signature is not None:
        tbs["signature"] = {"algorithm": signature}
    tbs_der = tbs.dump(force=True)
    sig = signer.sign(tbs_der, ec.ECDSA(hashes.SHA384()))
    return _asn1.Certificate({"tbs_certificate": tbs, "signature_algorithm": cert["signature_algorithm"].copy(),
                              "signature_value": sig}).dump(force=True)


def semantic_mutants(b: Base) -> list[Mutant]:
    c = _Collector(b, "semantics")
    fields = b.fields()
    good = b.sign(b.payload(fields))
    ms = _dt.timedelta(milliseconds=1)
    five = _dt.timedelta(minutes=5)
    c.add("fresh/at-timestamp", good, None)
    c.add("stale/just-past-window", good, E.POLICY_STALE, at=b.now + five + ms)
    c.add("stale/window-edge", good, None, at=b.now + five)
    c.add("stale/one-hour", good, E.POLICY_STALE, at=b.now + _dt.timedelta(hours=1))
    c.add("stale/short-window", good, E.POLICY_STALE, at=b.now + _dt.timedelta(seconds=2),
          expect=b.expect(max_age=_dt.timedelta(seconds=1)))
    c.add("stale/no-window", good, None, at=b.now + _dt.timedelta(hours=1), expect=b.expect(max_age=None))
    c.add("future/just-past-skew", good, E.POLICY_FUTURE, at=b.now - _dt.timedelta(seconds=30) - ms)
    c.add("future/skew-edge", good, None, at=b.now - _dt.timedelta(seconds=30))
    c.add("future/zero-skew", good, E.POLICY_FUTURE, at=b.now - ms, expect=b.expect(max_future=_dt.timedelta(0)))
    ts = b.timestamp
    c.add("stale/timestamp-old", b.sign(b.payload(fields, timestamp=uint64(ts - 5 * 60_000 - 1))), E.POLICY_STALE)
    c.add("stale/timestamp-edge", b.sign(b.payload(fields, timestamp=uint64(ts - 5 * 60_000))), None)
    c.add("future/timestamp-ahead", b.sign(b.payload(fields, timestamp=uint64(ts + 30_001))), E.POLICY_FUTURE)
    # nonce
    flipped = bytes([b.nonce[0] ^ 1]) + b.nonce[1:]
    c.add("nonce/other-challenge", good, E.POLICY_NONCE, expect=b.expect(nonce=flipped))
    c.add("nonce/prefix-expected", good, E.POLICY_NONCE, expect=b.expect(nonce=b.nonce[:-1]))
    c.add("nonce/longer-expected", good, E.POLICY_NONCE, expect=b.expect(nonce=b.nonce + b"\x00"))
    c.add("nonce/empty-expected", good, E.POLICY_NONCE, expect=b.expect(nonce=b""))
    c.add("nonce/document-empty", b.sign(b.payload(fields, nonce=bstr(b""))), E.POLICY_NONCE)
    c.add("nonce/document-flipped", b.sign(b.payload(fields, nonce=bstr(flipped))), E.POLICY_NONCE)
    # PCRs and debug mode
    zero = {**b.pcrs, 0: bytes(48)}
    debug_all = {**b.pcrs, **{i: bytes(48) for i in (0, 1, 2, 8)}}
    c.add("debug/zero-pcr0", b.sign(b.payload(fields, pcrs=enc(zero))), E.POLICY_DEBUG_MODE)
    c.add("debug/aws-debug-pcrs", b.sign(b.payload(fields, pcrs=enc(debug_all))), E.POLICY_DEBUG_MODE)
    c.add("debug/allowed-but-pinned", b.sign(b.payload(fields, pcrs=enc(debug_all))), E.POLICY_PCRS,
          expect=b.expect(allow_debug=True))
    c.add("debug/allowed-unpinned", b.sign(b.payload(fields, pcrs=enc(debug_all))), None,
          expect=b.expect(allow_debug=True, pcrs=None))
    c.add("debug/pcr0-absent", b.sign(b.payload(fields, pcrs=enc({i: v for i, v in b.pcrs.items() if i})),),
          E.POLICY_DEBUG_MODE)
    c.add("debug/pcr0-absent-allowed", b.sign(b.payload(fields, pcrs=enc({i: v for i, v in b.pcrs.items() if i}))),
          E.POLICY_PCRS, expect=b.expect(allow_debug=True))
    for i in (0, 1, 2, 8):
        changed = {**b.pcrs, i: bytes([0xEE]) * 48}
        c.add(f"pcrs/pcr{i}-changed", b.sign(b.payload(fields, pcrs=enc(changed))), E.POLICY_PCRS)
    c.add("pcrs/pcr4-changed-unpinned", b.sign(b.payload(fields, pcrs=enc({**b.pcrs, 4: bytes(48)}))), None)
    pinned = {i: b.pcrs[i] for i in (0, 1, 2, 8)}
    old = {**pinned, 0: bytes([0xEE]) * 48}
    c.add("pcrs/rolling-second-set", good, None, expect=b.expect(pcrs=[old, pinned]))
    c.add("pcrs/rolling-no-set", good, E.POLICY_PCRS, expect=b.expect(pcrs=[old, {**pinned, 8: bytes(48)}]))
    c.add("pcrs/empty-allow-list", good, E.POLICY_PCRS, expect=b.expect(pcrs=[]))
    c.add("pcrs/unreported-index", good, E.POLICY_PCRS, expect=b.expect(pcrs=[{**pinned, 20: bytes(48)}]))
    # public key and user data
    c.add("public-key/other", good, E.POLICY_PUBLIC_KEY, expect=b.expect(public_key=b"\x04" + b"Q" * 96))
    c.add("public-key/prefix", good, E.POLICY_PUBLIC_KEY, expect=b.expect(public_key=b.public_key[:-1]))
    c.add("public-key/document-other", b.sign(b.payload(fields, public_key=bstr(b"\x04" + b"Q" * 96))),
          E.POLICY_PUBLIC_KEY)
    c.add("user-data/other", good, E.POLICY_USER_DATA, expect=b.expect(user_data=b"V" * 48))
    c.add("user-data/document-empty", b.sign(b.payload(fields, user_data=bstr(b""))), E.POLICY_USER_DATA)
    return c.items


def _renamed_instance(b: Base) -> bytes:
    """An instance CA whose issuer name is not the zonal CA's subject (signed by the zonal key)."""
    from .testpki import make_cert

    spec = ca_specs(b.now)[3]
    cert = make_cert(spec, b.pki.keys[3], _x509_name("zonal.elsewhere"), b.pki.keys[2])
    return cert.public_bytes(Encoding.DER)


def _x509_name(cn: str):
    from .testpki import _name

    return _name(cn)


def _aws_root_pem() -> bytes:
    from .roots import AWS_NITRO_ROOT_G1_PEM

    return AWS_NITRO_ROOT_G1_PEM


GENERATORS: dict[str, Callable[[Base], list[Mutant]]] = {
    "envelope": envelope_mutants,
    "payload": payload_mutants,
    "certificates": certificate_mutants,
    "semantics": semantic_mutants,
}


def generate(now: _dt.datetime | None = None, layers: Sequence[str] = LAYERS) -> list[Mutant]:
    """All mutants for the given layers; ids are unique."""
    base = make_base(now or _dt.datetime.now(_dt.timezone.utc))
    out: list[Mutant] = []
    for layer in layers:
        out.extend(GENERATORS[layer](base))
    ids = Counter(m.id for m in out)
    dup = [i for i, n in ids.items() if n > 1]
    if dup:
        raise AssertionError(f"duplicate mutant ids: {dup}")
    return out


def run_one(m: Mutant) -> Outcome:
    try:
        verify(m.document, roots=list(m.roots), at=m.at, expect=m.expect)
    except AttestationError as err:
        if m.expected is None:
            return Outcome(m, err.code, "wrongly-rejected", err.message)
        return Outcome(m, err.code, "ok" if err.code is m.expected else "wrong-check", err.message)
    except Exception as exc:
        return Outcome(m, None, "crash", f"{type(exc).__name__}: {exc}")
    return Outcome(m, None, "ok" if m.expected is None else "wrongly-accepted")


def run(mutants: Sequence[Mutant]) -> list[Outcome]:
    return [run_one(m) for m in mutants]


def summarize(outcomes: Sequence[Outcome]) -> dict:
    per_layer: dict[str, Counter] = {}
    for o in outcomes:
        cnt = per_layer.setdefault(o.mutant.layer, Counter())
        cnt["tried"] += 1
        if o.mutant.expected is None:
            cnt["valid-accepted" if o.verdict == "ok" else o.verdict] += 1
        else:
            cnt["rejected-right-check" if o.verdict == "ok" else o.verdict] += 1
    total = Counter()
    for cnt in per_layer.values():
        total.update(cnt)
    return {"layers": {k: dict(v) for k, v in per_layer.items()}, "total": dict(total),
            "distinct_documents": len({o.mutant.document for o in outcomes}),
            "checks_named": sorted({o.mutant.expected.value for o in outcomes if o.mutant.expected})}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.attestation.mutate", description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print every mutant's outcome as JSON")
    ap.add_argument("--layer", action="append", choices=LAYERS, help="only these layers (repeatable)")
    args = ap.parse_args(argv)
    outcomes = run(generate(layers=args.layer or LAYERS))
    summary = summarize(outcomes)
    bad = [o for o in outcomes if o.verdict != "ok"]
    if args.json:
        print(json.dumps({"summary": summary, "mutants": [
            {"id": o.mutant.id, "expected": o.mutant.expected.value if o.mutant.expected else "valid",
             "actual": o.actual.value if o.actual else "valid", "verdict": o.verdict, "detail": o.detail}
            for o in outcomes]}, indent=1))
    else:
        t = summary["total"]
        for layer, cnt in summary["layers"].items():
            print(f"{layer:13s} " + ", ".join(f"{k}={v}" for k, v in sorted(cnt.items())))
        print(f"total: tried={t.get('tried', 0)} distinct-documents={summary['distinct_documents']} "
              f"rejected-right-check={t.get('rejected-right-check', 0)} valid-accepted={t.get('valid-accepted', 0)} "
              f"wrong-check={t.get('wrong-check', 0)} wrongly-accepted={t.get('wrongly-accepted', 0)} "
              f"wrongly-rejected={t.get('wrongly-rejected', 0)} crash={t.get('crash', 0)}")
        print(f"checks exercised: {len(summary['checks_named'])}")
        for o in bad:
            print(f"  MISMATCH {o.mutant.id}: expected {o.mutant.expected.value if o.mutant.expected else 'valid'}, "
                  f"got {o.actual.value if o.actual else 'valid'} ({o.verdict}) {o.detail}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
