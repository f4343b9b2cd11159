"""Benchmark: one full strict verification vs. the floor of its unavoidable work (spec 8.6).

The floor, measured in the same run on the same document: CBOR-decoding the envelope and the
payload, plus the raw ECDSA P-384 verifications of the four chain links and of the document
signature, with keys and signed bytes prepared in advance. A full verification (parsing,
every named check, path validation, policy) must cost at most 1.5x the floor.

    python bench/bench_attestation.py [--iterations N] [--repeats R] [--limit 1.5]

Prints both timings and the ratio; exits 1 when the ratio is above the limit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.resources
import json
import sys
import time

import cbor2
import cryptography
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))  # a checkout's packages

from harness.attestation import Expectations, aws_nitro_root_g1, sig_structure, verify  # noqa: E402

ES384 = ec.ECDSA(hashes.SHA384())


def load_document(name: str = "qos-2022-07-06.cbor") -> tuple[bytes, dt.datetime, dict]:
    folder = importlib.resources.files("vectors") / "attestation" / "aws"
    entry = next(d for d in json.loads((folder / "manifest.json").read_text())["documents"] if d["file"] == name)
    at = dt.datetime.fromtimestamp(entry["timestamp_ms"] / 1000, dt.timezone.utc)
    return (folder / name).read_bytes(), at, entry


def floor_work(document: bytes):
    """Prepare the floor's inputs once; return a function doing only the unavoidable work."""
    envelope = cbor2.loads(document)
    payload = cbor2.loads(envelope[2])
    certs = [aws_nitro_root_g1()] + [x509.load_der_x509_certificate(d) for d in payload["cabundle"][1:]]
    certs.append(x509.load_der_x509_certificate(payload["certificate"]))
    links = [(p.public_key(), c.signature, c.tbs_certificate_bytes) for p, c in zip(certs, certs[1:])]
    leaf_key = certs[-1].public_key()
    sig = envelope[3]
    der = encode_dss_signature(int.from_bytes(sig[:48], "big"), int.from_bytes(sig[48:], "big"))
    tbs = sig_structure(envelope[0], envelope[2])

    def floor() -> None:
        env = cbor2.loads(document)
        cbor2.loads(env[2])
        for key, signature, data in links:
            key.verify(signature, data, ES384)
        leaf_key.verify(der, tbs, ES384)

    return floor


def timed(fn, iterations: int) -> float:
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    return (time.perf_counter() - start) / iterations


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--limit", type=float, default=1.5)
    args = ap.parse_args(argv)

    document, at, entry = load_document()
    expect = Expectations(allow_debug=entry["debug_mode"], max_age=None)
    full = lambda: verify(document, at=at, expect=expect)
    floor = floor_work(document)
    full(), floor()  # warm up (root parsing, caches)
    floors, fulls = [], []
    for _ in range(args.repeats):  # interleaved, so drift affects both alike
        floors.append(timed(floor, args.iterations))
        fulls.append(timed(full, args.iterations))
    f, v = min(floors), min(fulls)  # the least disturbed repeat of each
    ratio = v / f
    print(f"cryptography {cryptography.__version__}, cbor2 {importlib.metadata.version('cbor2')}, "
          f"document {entry['file']}")
    print(f"floor (CBOR decode + 5 raw ECDSA P-384 verifications): {f * 1e3:.3f} ms")
    print(f"full strict verification:                              {v * 1e3:.3f} ms")
    print(f"ratio: {ratio:.3f} (limit {args.limit})")
    if ratio > args.limit:
        print("FAIL: verification costs more than the limit allows", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
