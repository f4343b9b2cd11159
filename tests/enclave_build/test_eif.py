"""EIF writer and reader (spec §9.2, §9.3), checked against the independent oracle."""

from __future__ import annotations

import io
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave_build import eif, errors
from enclave_build.describe import inspect_eif
from enclave_build.eif import EifReader, EifWriter, SectionSpec, SectionType

from . import eif_oracle
from .conftest import SMALL_METADATA, X86_CMDLINE, make_eif


def test_written_eif_reads_back_in_the_oracle(tmp_path):
    data, meas = make_eif(tmp_path)
    o = eif_oracle.parse_eif(data)
    h = o["header"]
    assert (h["version"], h["flags"], h["default_mem"], h["default_cpus"], h["reserved"], h["unused"]) == (4, 0, 1 << 30, 2, 0, 0)
    assert h["crc_ok"]
    assert [s["type"] for s in o["sections"]] == ["kernel", "cmdline", "metadata", "ramdisk", "ramdisk"]
    assert o["sections"][1]["data"] == X86_CMDLINE
    assert o["sections"][2]["data"] == SMALL_METADATA
    assert o["pcrs"] == {"PCR0": meas.pcr0, "PCR1": meas.pcr1, "PCR2": meas.pcr2}


def test_layout_has_no_padding_and_crc_is_zlib_over_everything_but_the_field(tmp_path):
    data, _ = make_eif(tmp_path)
    h = eif.EifHeader.from_bytes(data[:548])
    assert h.section_offsets[0] == 548
    for i in range(h.num_sections - 1):
        assert h.section_offsets[i + 1] == h.section_offsets[i] + 12 + h.section_sizes[i]
    assert h.section_offsets[h.num_sections:] == (0,) * (32 - h.num_sections)
    assert h.crc32 == zlib.crc32(data[:544] + data[548:])
    assert data[544:548] == zlib.crc32(data[:544] + data[548:]).to_bytes(4, "big")


def test_arm64_flag_is_written(tmp_path):
    data, _ = make_eif(tmp_path, flags=eif.FLAG_ARCH_ARM64)
    assert eif_oracle.parse_eif(data)["header"]["flags"] == 1


def test_signed_eif_reads_back_in_the_oracle(tmp_path, p384_identity):
    from enclave_build.signing import SigningKey

    key = SigningKey.from_pem(*p384_identity)
    data, meas = make_eif(tmp_path, signing_key=key)
    o = eif_oracle.parse_eif(data)
    assert o["header"]["crc_ok"]
    assert [s["type"] for s in o["sections"]][-1] == "signature"
    assert o["pcrs"]["PCR0"] == meas.pcr0 and meas.pcr8 is not None


def test_reader_events_and_measurements_match_the_writer(tmp_path):
    data, meas = make_eif(tmp_path)
    r = EifReader()
    events = []
    for i in range(0, len(data), 97):
        events += r.receive_data(data[i : i + 97])
    events += r.end_of_data()
    started = [e for e in events if isinstance(e, eif.SectionStarted)]
    assert [e.type for e in started] == [SectionType.KERNEL, SectionType.CMDLINE, SectionType.METADATA, SectionType.RAMDISK, SectionType.RAMDISK]
    assert [e.ramdisk_index for e in started] == [None, None, None, 0, 1]
    ended = [e for e in events if isinstance(e, eif.EifEnded)]
    assert len(ended) == 1 and ended[0].crc_ok
    rd1 = b"".join(bytes(e.data) for e in events if isinstance(e, eif.SectionDataReceived) and e.ramdisk_index == 1)
    assert rd1 == b"R1" * 700
    info = inspect_eif(io.BytesIO(data), chunk_size=61)
    assert info.measurements == meas and info.crc_ok


def test_measurements_do_not_depend_on_metadata(tmp_path):
    a, ma = make_eif(tmp_path)
    b, mb = make_eif(tmp_path, metadata_json=SMALL_METADATA.replace(b"2026-11-28T00:00:00", b"2027-01-01T12:34:56"))
    assert a != b and ma == mb


@settings(max_examples=40)
@given(
    kernel=st.binary(max_size=300),
    cmdline=st.binary(max_size=50).filter(lambda b: b"\0" not in b),
    ramdisks=st.lists(st.binary(max_size=200), min_size=1, max_size=5),
    chunk=st.integers(1, 700),
)
def test_any_writer_output_is_read_by_oracle_and_reader(kernel, cmdline, ramdisks, chunk):
    specs = [SectionSpec(SectionType.KERNEL, len(kernel)), SectionSpec(SectionType.CMDLINE, len(cmdline)),
             SectionSpec(SectionType.METADATA, len(SMALL_METADATA))] + [SectionSpec(SectionType.RAMDISK, len(r)) for r in ramdisks]
    w = EifWriter(specs)
    out = io.BytesIO()
    out.write(w.placeholder_header())
    for d in [kernel, cmdline, SMALL_METADATA, *ramdisks]:
        out.write(w.begin_section())
        for i in range(0, len(d), chunk):
            out.write(w.section_data(d[i : i + chunk]))
    out.seek(0)
    out.write(w.finish())
    data = out.getvalue()
    assert len(data) == w.total_size
    o = eif_oracle.parse_eif(data)
    assert o["header"]["crc_ok"]
    assert [s["data"] for s in o["sections"]] == [kernel, cmdline, SMALL_METADATA, *ramdisks]
    info = inspect_eif(io.BytesIO(data), chunk_size=chunk)
    assert (info.measurements.pcr0, info.measurements.pcr1, info.measurements.pcr2) == tuple(o["pcrs"].values())


def _specs(*types):
    return [SectionSpec(t, 1) for t in types]


K, C, M, R, S = SectionType.KERNEL, SectionType.CMDLINE, SectionType.METADATA, SectionType.RAMDISK, SectionType.SIGNATURE


@pytest.mark.parametrize("types", [
    (K, C, R, M), (C, K, M, R), (K, C, M), (K, C, M, S), (K, C, M, S, R), (K, C, M, R, S, S), (K, M, C, R), (K, C, M) + (R,) * 30,
])
def test_writer_refuses_sections_out_of_order_or_count(types):
    with pytest.raises(errors.EifBuildError) as ei:
        EifWriter(_specs(*types))
    assert ei.value.code in (errors.ErrorCode.WRITER_STATE, errors.ErrorCode.BAD_SECTION_COUNT)


def test_writer_refuses_misuse():
    w = EifWriter(_specs(K, C, M, R))
    with pytest.raises(errors.WriterStateError):
        w.finish()
    w.begin_section()
    with pytest.raises(errors.WriterStateError):
        w.section_data(b"xx")
    with pytest.raises(errors.WriterStateError):
        w.begin_section()
    with pytest.raises(errors.WriterStateError):
        EifWriter(_specs(K, C, M, R), flags=2)
