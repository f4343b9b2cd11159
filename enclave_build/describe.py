"""Read an EIF from a file and describe it like ``nitro-cli describe-eif`` (§9.3, §9.4, §9.8)."""

from __future__ import annotations

import dataclasses
from typing import Any, BinaryIO, Callable

from . import eif, signing
from .metadata import decode_metadata
from .pcr import CHUNK_SIZE, Measurements, Measurer


@dataclasses.dataclass(frozen=True, kw_only=True)
class EifInfo:
    header: eif.EifHeader
    section_types: list[eif.SectionType]
    cmdline: bytes
    metadata: dict[str, Any] | None
    signature_section: bytes | None
    measurements: Measurements
    crc_ok: bool

    @property
    def is_signed(self) -> bool:
        return self.signature_section is not None


def inspect_eif(fp: BinaryIO, *, check_crc: bool = True, chunk_size: int = CHUNK_SIZE,
                on_data: Callable[[eif.SectionDataReceived], None] | None = None) -> EifInfo:
    """Validate and measure an EIF in one streaming pass (constant memory). ``on_data`` sees each
    chunk of the kernel and ramdisk sections as it is measured (the local launcher writes them out)."""
    reader = eif.EifReader(check_crc=check_crc)
    m = Measurer()
    types: list[eif.SectionType] = []
    small: dict[eif.SectionType, bytes] = {}
    crc_ok = False
    buf = bytearray(chunk_size)
    view = memoryview(buf)

    def handle(events: list) -> None:
        nonlocal crc_ok
        for ev in events:
            if isinstance(ev, eif.SectionStarted):
                types.append(ev.type)
            elif isinstance(ev, eif.SectionDataReceived):
                if on_data is not None:
                    on_data(ev)
                if ev.type is eif.SectionType.RAMDISK:
                    m.ramdisk(ev.ramdisk_index, ev.data)
                else:  # kernel (cmdline is buffered and arrives with SectionEnded)
                    m.boot(ev.data)
            elif isinstance(ev, eif.SectionEnded) and ev.data is not None:
                small[ev.type] = ev.data
                if ev.type is eif.SectionType.CMDLINE:
                    m.boot(ev.data)
                elif ev.type is eif.SectionType.SIGNATURE:
                    sigs = signing.decode_signature_section(ev.data)
                    try:
                        m.certificate(signing.certificate_der(sigs[0].signing_certificate))
                    except Exception as e:
                        from . import errors

                        raise errors.BadSignatureSection(f"signing certificate: {e}") from None
            elif isinstance(ev, eif.EifEnded):
                crc_ok = ev.crc_ok

    while True:
        n = fp.readinto(buf)
        if not n:
            break
        handle(reader.receive_data(view[:n]))
    handle(reader.end_of_data())
    assert reader.header is not None
    md = small.get(eif.SectionType.METADATA)
    return EifInfo(
        header=reader.header,
        section_types=types,
        cmdline=small.get(eif.SectionType.CMDLINE, b""),
        metadata=decode_metadata(md) if md is not None else None,
        signature_section=small.get(eif.SectionType.SIGNATURE),
        measurements=m.result(),
        crc_ok=crc_ok,
    )


def _cert_info(pem: bytes) -> dict[str, Any]:
    cert = signing.load_certificate(pem)
    issuer = {}
    for attr in cert.issuer:
        issuer[getattr(attr.oid, "_name", attr.oid.dotted_string)] = attr.value
    sig_alg = getattr(cert.signature_algorithm_oid, "_name", cert.signature_algorithm_oid.dotted_string)
    fmt = "%b %e %H:%M:%S %Y GMT"
    return {
        "IssuerName": dict(sorted(issuer.items())),
        "Algorithm": sig_alg,
        "NotBefore": cert.not_valid_before_utc.strftime(fmt),
        "NotAfter": cert.not_valid_after_utc.strftime(fmt),
        "Signature": ":".join(f"{b:02X}" for b in cert.signature),
    }


def describe_json(info: EifInfo) -> dict[str, Any]:
    """nitro-cli's ``EifDescribeInfo`` field names and order (src/common/json_output.rs)."""
    out: dict[str, Any] = {"EifVersion": info.header.version, "Measurements": info.measurements.to_json_obj()}
    out["IsSigned"] = info.is_signed
    sign_check = None
    if info.signature_section is not None:
        sigs = signing.decode_signature_section(info.signature_section)
        out["SigningCertificate"] = _cert_info(sigs[0].signing_certificate)
        sign_check = signing.verify_signature_section(info.signature_section, bytes.fromhex(info.measurements.pcr0))
    out["CheckCRC"] = info.crc_ok
    if sign_check is not None:
        out["SignatureCheck"] = sign_check
    md = info.metadata
    if md is not None:
        out["ImageName"] = md["ImageName"]
        out["ImageVersion"] = md["ImageVersion"]
        bm = md["BuildMetadata"]
        meta: dict[str, Any] = {k: bm[k] for k in ("BuildTime", "BuildTool", "BuildToolVersion", "OperatingSystem", "KernelVersion")}
        meta["DockerInfo"] = md["DockerInfo"]
        custom = md.get("CustomMetadata")
        if isinstance(custom, dict):  # serde(flatten) of a JSON object
            meta.update(custom)
        out["Metadata"] = meta
    return out
