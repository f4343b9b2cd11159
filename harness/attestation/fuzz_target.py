"""Coverage-guided fuzzing of the decoder and verifier with atheris (spec 8.7).

    python -m harness.attestation.fuzz_target --write-seeds CORPUS   # seed corpus, then exit
    python -m harness.attestation.fuzz_target CORPUS -max_total_time=600 [libFuzzer flags]

The first input byte picks a mode: even -> the rest is a whole document, verified against the
AWS root and the test root; odd -> the rest is a payload, signed with the test leaf first, so the
fuzzer reaches the chain and policy checks. Any exception other than ``AttestationError`` is a
crash (a bug). Needs the optional ``atheris`` package (``pip install atheris``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import sys
from pathlib import Path

from .codec import unsafe_decode_document
from .errors import AttestationError
from .mutate import make_base
from .roots import AWS_NITRO_ROOT_G1_PEM
from .verifier import Expectations, verify

_NOW = _dt.datetime(2026, 1, 1, tzinfo=_dt.timezone.utc)
_BASE = make_base(_NOW)
_ROOTS = [AWS_NITRO_ROOT_G1_PEM, _BASE.pki.root_pem]
_EXPECT = Expectations(allow_debug=True, max_age=None)


def check_one(data: bytes) -> None:
    """Run one input; raise only if the verifier misbehaves (not on rejection)."""
    if not data:
        return
    body = data[1:]
    document = body if data[0] % 2 == 0 else _BASE.sign(body)
    try:
        unsafe_decode_document(document)
    except AttestationError:
        pass
    try:
        verify(document, roots=_ROOTS, at=_NOW, expect=_EXPECT)
    except AttestationError:
        pass


def seeds() -> list[bytes]:
    """A valid document in both modes, plus every mutant of the mutation engine."""
    from .mutate import generate

    payload = _BASE.payload()
    out = [b"\x00" + _BASE.sign(payload), b"\x01" + payload]
    out += [b"\x00" + m.document for m in generate(_NOW, layers=("envelope", "payload"))]
    return out


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[1] == "--write-seeds":
        target = Path(argv[2])
        target.mkdir(parents=True, exist_ok=True)
        for s in seeds():
            (target / hashlib.sha256(s).hexdigest()[:16]).write_bytes(s)
        print(f"wrote {len(seeds())} seeds to {target}")
        return 0
    try:
        import atheris
    except ImportError:
        print("atheris is not installed: pip install atheris", file=sys.stderr)
        return 2
    atheris.instrument_all()  # the harness is already imported: instrument every loaded function
    atheris.Setup(argv, check_one)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
