"""One exception tree for the EIF build, each error with a stable code.

Codes are the stable contract (docs/spec/09-eif.md §9.8 lists them); messages are not.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(str, enum.Enum):
    """Stable error codes. Never renumber or rename: tools match on these strings."""

    # EIF container (spec §9.2, §9.3)
    TRUNCATED = "eif/truncated"
    TRAILING_DATA = "eif/trailing-data"
    BAD_MAGIC = "eif/bad-magic"
    UNSUPPORTED_VERSION = "eif/unsupported-version"
    BAD_HEADER_FLAGS = "eif/bad-header-flags"
    BAD_RESERVED = "eif/bad-reserved"
    BAD_SECTION_COUNT = "eif/bad-section-count"
    BAD_SECTION_TABLE = "eif/bad-section-table"
    BAD_SECTION_TYPE = "eif/bad-section-type"
    BAD_SECTION_FLAGS = "eif/bad-section-flags"
    SECTION_SIZE_MISMATCH = "eif/section-size-mismatch"
    SECTION_ORDER = "eif/section-order"
    SECTION_TOO_LARGE = "eif/section-too-large"
    CRC_MISMATCH = "eif/crc-mismatch"
    BAD_CMDLINE = "eif/bad-cmdline"
    BAD_METADATA = "eif/bad-metadata"
    BAD_SIGNATURE_SECTION = "eif/bad-signature-section"
    # Writer misuse
    WRITER_STATE = "eif/writer-state"
    # Signing (spec §9.6)
    BAD_CERTIFICATE = "sign/bad-certificate"
    BAD_KEY = "sign/bad-key"
    KEY_CERT_MISMATCH = "sign/key-certificate-mismatch"
    UNSUPPORTED_CURVE = "sign/unsupported-curve"
    SIGNATURE_INVALID = "sign/signature-invalid"
    # Ramdisks and image sources (spec §9.5)
    CPIO = "ramdisk/cpio"
    UNSUPPORTED_TAR_ENTRY = "ramdisk/unsupported-tar-entry"
    BAD_IMAGE_ARCHIVE = "image/bad-archive"
    IMAGE_CONFIG = "image/config"
    DOCKER = "image/docker"
    BLOBS = "blobs/missing"
    # The local enclave flavour (spec §9.11)
    LOCAL_BLOBS = "local/blobs"
    LOCAL_LAUNCH = "local/launch"


class EifBuildError(Exception):
    """Root of every error raised by ``enclave_build``."""

    code: ErrorCode = ErrorCode.TRUNCATED  # overridden by every subclass

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        offset: int | None = None,
        expected: Any = None,
        actual: Any = None,
    ) -> None:
        if code is not None:
            self.code = code
        self.offset = offset
        self.expected = expected
        self.actual = actual
        detail = message
        if expected is not None or actual is not None:
            detail += f" (expected {expected!r}, got {actual!r})"
        if offset is not None:
            detail += f" at offset {offset}"
        super().__init__(f"[{self.code.value}] {detail}")


class EifFormatError(EifBuildError):
    """The bytes are not a well-formed EIF (reader side)."""


class TruncatedEif(EifFormatError):
    code = ErrorCode.TRUNCATED


class TrailingData(EifFormatError):
    code = ErrorCode.TRAILING_DATA


class BadMagic(EifFormatError):
    code = ErrorCode.BAD_MAGIC


class UnsupportedVersion(EifFormatError):
    code = ErrorCode.UNSUPPORTED_VERSION


class BadHeaderFlags(EifFormatError):
    code = ErrorCode.BAD_HEADER_FLAGS


class BadReserved(EifFormatError):
    code = ErrorCode.BAD_RESERVED


class BadSectionCount(EifFormatError):
    code = ErrorCode.BAD_SECTION_COUNT


class BadSectionTable(EifFormatError):
    code = ErrorCode.BAD_SECTION_TABLE


class BadSectionType(EifFormatError):
    code = ErrorCode.BAD_SECTION_TYPE


class BadSectionFlags(EifFormatError):
    code = ErrorCode.BAD_SECTION_FLAGS


class SectionSizeMismatch(EifFormatError):
    code = ErrorCode.SECTION_SIZE_MISMATCH


class SectionOrderError(EifFormatError):
    code = ErrorCode.SECTION_ORDER


class SectionTooLarge(EifFormatError):
    code = ErrorCode.SECTION_TOO_LARGE


class CrcMismatch(EifFormatError):
    code = ErrorCode.CRC_MISMATCH


class BadCmdline(EifFormatError):
    code = ErrorCode.BAD_CMDLINE


class BadMetadata(EifFormatError):
    code = ErrorCode.BAD_METADATA


class BadSignatureSection(EifFormatError):
    code = ErrorCode.BAD_SIGNATURE_SECTION


class WriterStateError(EifBuildError):
    """The writer was driven out of order (a programming error in the caller)."""

    code = ErrorCode.WRITER_STATE


class SigningError(EifBuildError):
    code = ErrorCode.BAD_KEY


class RamdiskError(EifBuildError):
    code = ErrorCode.CPIO


class ImageSourceError(EifBuildError):
    code = ErrorCode.BAD_IMAGE_ARCHIVE


class BlobsError(EifBuildError):
    code = ErrorCode.BLOBS
