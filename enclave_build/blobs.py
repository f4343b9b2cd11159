"""The boot blobs nitro-cli ships (kernel, its .config, cmdline, init, nsm.ko) — §9.5.2.

A blobs directory may also hold ``modules/*.ko``: kernel modules the init loads before ``nsm.ko``.
nitro-cli's blobs have none (AWS's kernel builds its drivers in); the local enclave flavour's
Debian kernel builds its virtio-mmio driver as a module (§9.11). They go into ramdisk 0
under ``modules/`` and are measured with it (PCR1); without them ramdisk 0 is nitro-cli's, byte for byte.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from . import errors

ENV_VAR = "NITRO_CLI_BLOBS"
DEFAULT_DIR = "/usr/share/nitro_enclaves/blobs/"  # nitro-cli's packaged location on AWS hosts
KERNEL_NAMES = {"x86_64": "bzImage", "amd64": "bzImage", "aarch64": "Image", "arm64": "Image"}


def trim_cmdline(raw: bytes) -> bytes:
    """The cmdline blob trimmed of surrounding whitespace (Rust ``str::trim``), no NUL added."""
    return raw.decode("utf-8").strip().encode("utf-8")


@dataclasses.dataclass(frozen=True)
class Blobs:
    kernel: Path
    cmdline: bytes  # already trimmed
    init: Path
    nsm_ko: Path
    kernel_config: Path | None = None
    modules: tuple[Path, ...] = ()  # extra modules, in the order the init loads them (by name)

    @classmethod
    def from_dir(cls, directory: str | os.PathLike[str] | None = None, *, arch: str = "x86_64") -> "Blobs":
        """Blobs from ``directory``, else ``$NITRO_CLI_BLOBS``, else nitro-cli's default location."""
        d = Path(directory or os.environ.get(ENV_VAR) or DEFAULT_DIR)
        try:
            kname = KERNEL_NAMES[arch]
        except KeyError:
            raise errors.BlobsError("unsupported architecture", actual=arch) from None
        paths = {"kernel": d / kname, "cmdline": d / "cmdline", "init": d / "init", "nsm.ko": d / "nsm.ko"}
        missing = [str(p) for p in paths.values() if not p.is_file()]
        if missing:
            raise errors.BlobsError(f"blobs missing in {d}: {', '.join(missing)}")
        config = d / f"{kname}.config"
        modules = tuple(sorted((d / "modules").glob("*.ko"), key=lambda p: p.name))
        return cls(
            kernel=paths["kernel"],
            cmdline=trim_cmdline(paths["cmdline"].read_bytes()),
            init=paths["init"],
            nsm_ko=paths["nsm.ko"],
            kernel_config=config if config.is_file() else None,
            modules=modules,
        )
