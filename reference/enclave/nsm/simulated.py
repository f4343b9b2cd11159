"""The simulated NSM: AWS-shaped attestation documents signed by a persisted dev PKI (spec 8.4)."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from . import cose
from .errors import NsmConfigError
from .limits import check_inputs
from .pki import DevPki

PCR_COUNT = 16  # PCR0..15, as a Nitro enclave reports them
PCR_BYTES = 48  # SHA-384
#: PCRs that measure the image (0, 1, 2) and the signing certificate (8): all zero in debug mode.
DEBUG_ZEROED = (0, 1, 2, 8)


def _utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _signature_algorithm() -> ec.ECDSA:
    try:  # RFC 6979 signatures make documents reproducible from clock and randomness alone
        return ec.ECDSA(hashes.SHA384(), deterministic_signing=True)
    except TypeError:  # pragma: no cover - cryptography < 43
        return ec.ECDSA(hashes.SHA384())


class SimulatedNsm:
    """An NSM for running the reference outside a Nitro enclave.

    ``state_dir``: where the dev PKI lives (created once, then reused; ``root.pem`` is the root
    to publish). ``pcrs``: index -> 48-byte value (e.g. the PCRs enclave_build computed for the
    EIF); unspecified PCRs of 0..15 are zero. ``debug``: report PCR0/1/2/8 as zero, as AWS does
    for debug-mode enclaves. ``clock``: returns an aware UTC datetime. ``rng``: n -> n random
    bytes; keys, serial numbers and the module id come from it.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike,
        pcrs: Mapping[int, bytes] | None = None,
        debug: bool = False,
        clock: Callable[[], _dt.datetime] = _utc_now,
        rng: Callable[[int], bytes] = os.urandom,
    ):
        table = {i: bytes(PCR_BYTES) for i in range(PCR_COUNT)}
        for index, value in (pcrs or {}).items():
            if type(index) is not int or not 0 <= index < 32:
                raise NsmConfigError(f"PCR index must be 0..31, not {index!r}")
            if not isinstance(value, (bytes, bytearray)) or len(value) != PCR_BYTES:
                raise NsmConfigError(f"PCR{index} must be {PCR_BYTES} bytes")
            table[index] = bytes(value)
        if debug:
            for index in DEBUG_ZEROED:
                table[index] = bytes(PCR_BYTES)
        self._pcrs = table
        self.debug = debug
        self._clock = clock
        self._pki = DevPki(state_dir, rng=rng, now=clock())
        self.module_id = f"i-{rng(9).hex()[:17]}-enc{rng(8).hex()}"

    @property
    def pcrs(self) -> dict[int, bytes]:
        return dict(self._pcrs)

    def root_pem(self) -> bytes:
        """The dev root certificate (PEM): what a verifier of these documents must pin."""
        return self._pki.root_pem()

    def attest(
        self,
        user_data: bytes | None = None,
        nonce: bytes | None = None,
        public_key: bytes | None = None,
        *,
        now: _dt.datetime | None = None,
    ) -> bytes:
        """An attestation document (COSE_Sign1 bytes) binding the three optional inputs.

        Raises :class:`NsmInputTooLarge` / :class:`NsmInvalidInput` on inputs beyond spec 8.3.
        """
        check_inputs(user_data, nonce, public_key)
        now = now if now is not None else self._clock()
        leaf, cabundle = self._pki.leaf(now, self.module_id)
        payload = cose.encode_payload(
            module_id=self.module_id,
            timestamp_ms=int(now.timestamp() * 1000),
            pcrs=self._pcrs,
            certificate=leaf.cert.public_bytes(Encoding.DER),
            cabundle=cabundle,
            public_key=None if public_key is None else bytes(public_key),
            user_data=None if user_data is None else bytes(user_data),
            nonce=None if nonce is None else bytes(nonce),
        )
        r, s = decode_dss_signature(leaf.key.sign(cose.to_be_signed(payload), _signature_algorithm()))
        return cose.encode_sign1(payload, r.to_bytes(48, "big") + s.to_bytes(48, "big"))
