"""Nitro Enclave Image File (EIF) build, bit-compatible with nitro-cli (docs/spec/09-eif.md).

Main entry points::

    from nitro_vault.enclave_build import Blobs, build_eif_from_archive, build_eif_from_docker  # installed
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


# The project's four packages are top-level in a source checkout (``enclave_build``) and live under
# ``nitro_vault.`` when installed (README, "Packaging"); cross-package imports and ``python -m``
# names go through this, so both work.
_PREFIX = __name__[: -len("enclave_build")]


def sibling(name: str) -> str:
    """The import name of a sibling package: ``sibling("vectors")`` is ``vectors`` in a checkout,
    ``nitro_vault.vectors`` in an installed wheel."""
    return _PREFIX + name
