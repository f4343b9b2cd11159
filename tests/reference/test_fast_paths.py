"""The hot path's shortcuts change nothing but speed.

``parse_body`` tries orjson before the strict standard-library path (duplicate keys rejected);
``encode_reply`` tries orjson before the standard library's encoder; ``_loads_plaintext`` reads
the decrypted request with orjson unless it could hold an integer beyond 64 bits. Each is
compared here with the slow path it short-cuts, on hand-picked edge cases and generated inputs.
"""

import datetime
import enum
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference.enclave import envelope
from reference.enclave.errors import EnvelopeError
from reference.enclave.service import _loads_plaintext, encode_reply


def strict_parse(body: bytes):
    """The reference behaviour: standard-library JSON (duplicates rejected), then the field checks."""
    if len(body) > envelope.MAX_BODY_BYTES:
        return ("error", "payload_too_large")
    try:
        obj = envelope._parse_json_strictly(body)
        return ("ok", envelope.Envelope.from_json(obj))
    except EnvelopeError as error:
        return ("error", error.code.value)


def fast_parse(body: bytes):
    try:
        return ("ok", envelope.parse_body(body))
    except EnvelopeError as error:
        return ("error", error.code.value)


GOOD = {"ephemeralPublicKey": "11" * 32, "nonce": "22" * 24, "ciphertext": "33" * 16}

EDGE_BODIES = [
    b"\xef\xbb\xbf" + json.dumps(GOOD).encode(),  # UTF-8 BOM: refused by both parsers
    json.dumps(GOOD).encode().replace(b'"33', b'"\\ud800', 1),  # lone surrogate: stdlib only
    json.dumps({**GOOD, "extra": 123456789012345678901234567890}).encode(),  # orjson makes it a float
    json.dumps({**GOOD, "extra": float("nan")}).encode(),  # NaN: stdlib only
    json.dumps({**GOOD, "nonce": 12345678901234567890123}).encode(),
    b'{"ephemeralPublicKey":"' + b"11" * 32 + b'","ephemeralPublicKey":"' + b"11" * 32 + b'","nonce":"' + b"22" * 24 + b'"}',
    b'{"a":"x:y","ephemeralPublicKey":"' + b"11" * 32 + b'","nonce":"' + b"22" * 24 + b'","ciphertext":"' + b"33" * 16 + b'"}',
    json.dumps({**GOOD, "ciphertext": "33" * 15 + "3 3"}).encode(),  # fromhex skips the space
    json.dumps({**GOOD, "ciphertext": "33" * 15 + " 333"}).encode(),
    json.dumps({**GOOD, "ciphertext": "33" * 16 + " 44"}).encode(),  # 17 bytes from 35 characters
    json.dumps({**GOOD, "ciphertext": "33" * 16 + "\n44"}).encode(),
    json.dumps({**GOOD, "ephemeralPublicKey": "11" * 31 + "1 "}).encode(),
    json.dumps({**GOOD, "ephemeralPublicKey": "\u0661" * 64}).encode(),  # Arabic-Indic digits
    json.dumps({**GOOD, "nonce": "22" * 24 + "\t"}).encode(),
    json.dumps({**GOOD, "ciphertext": "33" * 15}).encode(),
    json.dumps({**GOOD, "ciphertext": "AbCdEf" * 10}).encode(),
    json.dumps({**GOOD, "ciphertext": "33" * 16 + "3"}).encode(),
    json.dumps({**GOOD, "nonce": None}).encode(),
    json.dumps([GOOD]).encode(),
    json.dumps(GOOD).encode() + b" ",
    json.dumps(GOOD).encode() + b"x",
    b"[" * 5000 + b"]" * 5000,
    b"",
    json.dumps(GOOD).encode(),
]


@pytest.mark.parametrize("body", EDGE_BODIES)
def test_parse_body_matches_the_strict_path_on_edge_cases(body):
    assert fast_parse(body) == strict_parse(body)


HEXISH = st.text(alphabet="0123456789abcdefABCDEF \t\n\u0660g", max_size=80)
FIELD = st.one_of(HEXISH, st.integers(), st.none(), st.just("11" * 32), st.just("22" * 24), st.just("33" * 20))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["ephemeralPublicKey", "nonce", "ciphertext", "other"]), FIELD),
       st.sampled_from([json.dumps, lambda o: json.dumps(o, ensure_ascii=False), lambda o: json.dumps(o, indent=1)]))
def test_parse_body_matches_the_strict_path_on_generated_envelopes(fields, dump):
    body = dump(fields).encode()
    assert fast_parse(body) == strict_parse(body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parse_body_matches_the_strict_path_on_arbitrary_bytes(body):
    assert fast_parse(body) == strict_parse(body)


def json_values(floats, text=st.text(), integers=st.integers()):
    return st.recursive(
        st.none() | st.booleans() | integers | text | floats,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
        max_leaves=20,
    )


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values(st.floats(allow_nan=False, allow_infinity=False)), max_size=5))
def test_encode_reply_is_json_of_the_same_value(result):
    assert json.loads(encode_reply(result)) == result


ASCII = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=8)
INT64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(ASCII, json_values(st.nothing(), ASCII, INT64), max_size=5))
def test_encode_reply_is_byte_for_byte_the_compact_standard_encoding(result):
    # Outside this domain the bytes may differ, not the value: floats may be spelled differently
    # (1e16 / 1e+16) and orjson writes non-ASCII text as UTF-8 rather than \u escapes.
    assert encode_reply(result) == json.dumps(result, separators=(",", ":")).encode()


def test_encode_reply_escapes_a_lone_surrogate():
    # orjson refuses it; the standard library's ASCII-only output escapes it (UTF-8 cannot carry it).
    assert encode_reply({"s": "\ud800"}) == b'{"s":"\\ud800"}'


def test_encode_reply_writes_non_finite_floats_as_null():
    # The standard library would write NaN / Infinity, which is not JSON (clients' JSON.parse
    # refuses it); no operation returns such a float, and null is the documented choice.
    assert encode_reply({"a": float("inf"), "b": float("nan")}) == b'{"a":null,"b":null}'


class Level(enum.IntEnum):
    HIGH = 2


@pytest.mark.parametrize("result, expected", [
    ({"n": 2**70}, b'{"n":1180591620717411303424}'),  # beyond 64 bits: the standard library, exactly
    ({"level": Level.HIGH}, b'{"level":2}'),  # an int subclass: as the standard library writes it
    ({"success": True, "data": {"pong": "x"}, "error": None}, b'{"success":true,"data":{"pong":"x"},"error":null}'),
])
def test_encode_reply_exact_bytes(result, expected):
    assert encode_reply(result) == expected


def test_encode_reply_refuses_what_the_standard_library_refuses():
    with pytest.raises(TypeError):
        encode_reply({"when": datetime.datetime(2026, 1, 1)})


# --- the decrypted request: orjson unless a long digit run could be an integer beyond 64 bits ---

def typed(value):
    """A value with its types spelled out: 1 == 1.0 == True in Python, not in JSON."""
    if isinstance(value, dict):
        return ("dict", [(k, typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, float) and value != value:
        return ("float", "nan")
    return (type(value).__name__, value)


def _refuse_duplicates(pairs):
    if len(dict(pairs)) != len(pairs):
        raise ValueError("duplicate member")
    return dict(pairs)


def stdlib_reading(text: bytes):
    """The standard library, refusing duplicated member names as the envelope layer does (3.5)."""
    try:
        return ("ok", typed(json.loads(text.decode("utf-8"), object_pairs_hook=_refuse_duplicates)))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return ("error",)


def fast_reading(text: bytes):
    try:
        return ("ok", typed(_loads_plaintext(text)))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return ("error",)


PLAINTEXT_EDGES = [
    b'{"operation":"ping","options":{"message":"hi"}}',
    b'{"v":18446744073709551615}',  # 2**64 - 1: orjson keeps it an int
    b'{"v":18446744073709551616}',  # 2**64: orjson would make it a float
    b'{"v":-9223372036854775809}',  # below -2**63: likewise
    b'{"v":1000000000000000000000}',
    b'{"v":[1,2,{"w":123456789012345678901234567890}]}',
    b'{"v":"1234567890123456789012345"}',  # a long digit run in a string: the slow path, same value
    b'{"v":1e400}', b'{"v":NaN}', b'{"v":-Infinity}', b'{"v":"\\ud800"}', b'\xef\xbb\xbf{}',
    b'{"a":1,"a":2}', b'{"o":{"a":1,"b":{"c":[{"d":1,"d":1}]}}}', b'{"a":"x:y","a":2}', b'{"a":"\\u003a","a":2}',
    b'{"a":"x:y","b":2}', b'{"v":-0}', b'{"v":-0.0}', b'{"v":1.5e-320}', b'{"v":0.1}', b'[' * 3000 + b']' * 3000,
    b'{"v":1}x', b'', b'\xff',
]


@pytest.mark.parametrize("text", PLAINTEXT_EDGES)
def test_request_plaintext_reads_as_the_standard_library_reads_it(text):
    assert fast_reading(text) == stdlib_reading(text)


NUMBERS = st.one_of(
    st.integers(), st.integers(min_value=2**63 - 3, max_value=2**64 + 3), st.integers(max_value=-(2**63) + 3, min_value=-(2**63) - 3),
    st.floats(allow_nan=False, allow_infinity=False),
)


@settings(max_examples=500, deadline=None)
@given(st.recursive(st.none() | st.booleans() | NUMBERS | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=25),
       st.sampled_from([{}, {"ensure_ascii": False}, {"indent": 2}, {"separators": (",", ":")}]))
def test_request_plaintext_reads_as_the_standard_library_reads_it_generated(value, options):
    text = json.dumps({"operation": "x", "options": value}, **options).encode()
    assert fast_reading(text) == stdlib_reading(text)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(rb"\A-?[0-9]{1,40}(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,3})?\Z"))
def test_number_literals_read_alike(literal):
    text = b'{"v":' + literal + b"}"
    assert fast_reading(text) == stdlib_reading(text)
