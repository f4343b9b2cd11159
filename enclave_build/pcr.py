"""PCR measurements (docs/spec/09-eif.md §9.4), streamed with constant memory.

Every PCR is ``SHA384(48 zero bytes || SHA384(inputs))``: one TPM-style extend of a zero register
with the digest of the concatenated inputs. PCR0 = kernel, cmdline, all ramdisks; PCR1 = kernel,
cmdline, ramdisk 0; PCR2 = ramdisks 1..; PCR8 = DER of the signing certificate (signed EIFs only).

Each kernel/ramdisk byte feeds two digests (PCR0 and PCR1 or PCR2): two SHA-384 passes that cannot
share work (the chaining states differ). They run one after the other on each chunk; a helper
thread for the second digest was measured slower on the 2-vCPU build machines (bench/bench_pcr.py),
so there is none.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import BinaryIO, Iterable

PCR_SIZE = 48
ZERO_PCR = bytes(PCR_SIZE)
CHUNK_SIZE = 1 << 20
HASH_ALGORITHM_NAME = "Sha384 { ... }"  # what nitro-cli prints for its sha2 hasher


def extend(digest: bytes) -> bytes:
    """One extend of a zeroed register: ``SHA384(0^48 || digest)``."""
    return hashlib.sha384(ZERO_PCR + digest).digest()


def pcr_of_bytes(data: bytes) -> str:
    return extend(hashlib.sha384(data).digest()).hex()


def pcr_of_stream(fp: BinaryIO, chunk_size: int = CHUNK_SIZE) -> str:
    """PCR of a file's bytes (``nitro-cli pcr --input``), reading into one reused buffer."""
    h = hashlib.sha384()
    buf = bytearray(chunk_size)
    view = memoryview(buf)
    while True:
        n = fp.readinto(buf)
        if not n:
            break
        h.update(view[:n])
    return extend(h.digest()).hex()


def pcr_of_certificate(pem: bytes) -> str:
    """PCR8 of a PEM certificate (``nitro-cli pcr --signing-certificate``)."""
    from .signing import certificate_der

    return pcr_of_bytes(certificate_der(pem))


@dataclasses.dataclass(frozen=True)
class Measurements:
    pcr0: str
    pcr1: str
    pcr2: str
    pcr8: str | None = None

    def to_json_obj(self) -> dict[str, str]:
        """nitro-cli's ``Measurements`` map (a BTreeMap, hence sorted keys)."""
        out = {"HashAlgorithm": HASH_ALGORITHM_NAME, "PCR0": self.pcr0, "PCR1": self.pcr1, "PCR2": self.pcr2}
        if self.pcr8 is not None:
            out["PCR8"] = self.pcr8
        return out


class Measurer:
    """Accumulates PCR0/1/2/8 from section data fed in EIF order."""

    def __init__(self) -> None:
        self._pcr0 = hashlib.sha384()
        self._pcr1 = hashlib.sha384()
        self._pcr2 = hashlib.sha384()
        self._cert_der: bytes | None = None

    def boot(self, data) -> None:
        """Kernel, cmdline or ramdisk 0 bytes: PCR0 and PCR1."""
        self._pcr0.update(data)
        self._pcr1.update(data)

    def app(self, data) -> None:
        """Ramdisk 1.. bytes: PCR0 and PCR2."""
        self._pcr0.update(data)
        self._pcr2.update(data)

    def ramdisk(self, index: int, data) -> None:
        if index == 0:
            self.boot(data)
        else:
            self.app(data)

    def certificate(self, der: bytes) -> None:
        self._cert_der = der

    def result(self) -> Measurements:
        pcr8 = pcr_of_bytes(self._cert_der) if self._cert_der is not None else None
        return Measurements(
            pcr0=extend(self._pcr0.digest()).hex(),
            pcr1=extend(self._pcr1.digest()).hex(),
            pcr2=extend(self._pcr2.digest()).hex(),
            pcr8=pcr8,
        )


def measure_parts(kernel: Iterable[bytes], cmdline: bytes, ramdisks: list[Iterable[bytes]], certificate_der: bytes | None = None) -> Measurements:
    """Measurements from the parts (each an iterable of chunks), before any EIF exists."""
    m = Measurer()
    for chunk in kernel:
        m.boot(chunk)
    m.boot(cmdline)
    for i, rd in enumerate(ramdisks):
        for chunk in rd:
            m.ramdisk(i, chunk)
    if certificate_der is not None:
        m.certificate(certificate_der)
    return m.result()
