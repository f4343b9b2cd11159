"""X25519 (RFC 7748) against libsodium (PyNaCl, the reference's X25519) and pyca/cryptography
(the harness's X25519): RFC known answers and Wycheproof's x25519_test.json.

Consumer policy for Wycheproof's flags (valid must match, invalid must be rejected, acceptable
is decided here):
- ZeroSharedSecret, LowOrderPublic (the all-zero output cases): we REJECT. PROTOCOL.md section 2
  requires refusing an all-zero shared secret; both libraries raise, and the test demands it.
- Twist, NonCanonicalPublic, SmallPublicKey, EdgeCase*, SpecialPublicKey with a non-zero
  output: we ACCEPT, and the output must equal 'shared' (Wycheproof: if a point multiplication
  is performed, its result must be right).
"""

from __future__ import annotations

import re

import nacl.bindings as sodium
import nacl.exceptions
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from ._support import cases, h

ZERO = bytes(32)


def x25519_sodium(private: bytes, public: bytes) -> bytes:
    return sodium.crypto_scalarmult(private, public)


def x25519_pyca(private: bytes, public: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(public))


REJECTS = {x25519_sodium: nacl.exceptions.RuntimeError, x25519_pyca: ValueError}
IMPLS = [pytest.param(x25519_sodium, id="libsodium"), pytest.param(x25519_pyca, id="pyca")]


@pytest.mark.parametrize("x25519", IMPLS)
@pytest.mark.parametrize(("group", "test"), cases("x25519_rfc7748", group_type="XdhComp"))
def test_rfc7748_known_answer(x25519, group, test):
    assert x25519(h(test["private"]), h(test["public"])).hex() == test["shared"]


def _slow_selected(config) -> bool:
    """True when the run asked for slow tests (``-m slow``), not when it excluded them."""
    return re.search(r"(?<!not )\bslow\b", config.getoption("markexpr") or "") is not None


def _iterate(x25519, start: bytes, iterations: int) -> bytes:
    k = u = start
    for _ in range(iterations):
        k, u = x25519(k, u), k
    return k


@pytest.mark.parametrize("x25519", IMPLS)
@pytest.mark.parametrize(("group", "test"), cases("x25519_rfc7748", group_type="XdhIteration"))
def test_rfc7748_iterated(request, x25519, group, test):
    if "Slow" in test["flags"] and not _slow_selected(request.config):
        pytest.skip("1,000,000 iterations: run with -m slow")
    assert _iterate(x25519, h(group["start"]), test["iterations"]).hex() == test["shared"]


@pytest.mark.parametrize("x25519", IMPLS)
@pytest.mark.parametrize(("group", "test"), cases("x25519_test"))
def test_wycheproof(x25519, group, test):
    assert group["curve"] == "curve25519"
    private, public, shared = h(test["private"]), h(test["public"]), h(test["shared"])
    if test["result"] == "invalid" or shared == ZERO:
        # invalid: must be rejected; all-zero output (acceptable upstream): our policy rejects.
        with pytest.raises(REJECTS[x25519]):
            x25519(private, public)
    else:
        assert x25519(private, public) == shared
