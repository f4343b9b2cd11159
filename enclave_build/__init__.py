"""Nitro Enclave Image File (EIF) build, bit-compatible with nitro-cli (docs/spec/09-eif.md).

Main entry points::

    from enclave_build import Blobs, build_eif_from_archive, build_eif_from_docker
    result = build_eif_from_archive("app.tar", Blobs.from_dir(), "app.eif")
    result.measurements.pcr0

Lower layers (sans-IO): ``eif`` (writer/reader), ``pcr``, ``cpio``, ``ramdisk``, ``signing``.
"""

from .blobs import Blobs
from .build import (
    BuildResult,
    Part,
    assemble_eif,
    build_eif,
    build_eif_from_archive,
    build_eif_from_docker,
    sign_eif,
    write_measurements,
)
from .describe import EifInfo, describe_json, inspect_eif
from .errors import EifBuildError, EifFormatError, ErrorCode
from .image import ArchiveImageSource, DockerImageSource, ImageConfig
from .pcr import Measurements, pcr_of_bytes, pcr_of_certificate, pcr_of_stream
from .signing import SigningKey

__all__ = [
    "ArchiveImageSource",
    "Blobs",
    "BuildResult",
    "DockerImageSource",
    "EifBuildError",
    "EifFormatError",
    "EifInfo",
    "ErrorCode",
    "ImageConfig",
    "Measurements",
    "Part",
    "SigningKey",
    "assemble_eif",
    "build_eif",
    "build_eif_from_archive",
    "build_eif_from_docker",
    "describe_json",
    "inspect_eif",
    "pcr_of_bytes",
    "pcr_of_certificate",
    "pcr_of_stream",
    "sign_eif",
    "write_measurements",
]
