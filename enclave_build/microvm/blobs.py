"""Boot blobs of the local enclave flavour (§9.11): what nitro-cli's blobs directory holds, made here.

    python -m enclave_build.microvm.blobs --output DIR [--deb FILE] [--mirror URL]

- ``bzImage``, ``bzImage.config``: Debian's cloud kernel, from the package pinned in
  ``kernel.lock.json`` (fetched from the Debian mirror by its pool path and checked against the
  pinned SHA-256; a local copy can be given with ``--deb``);
- ``nsm.ko`` and ``modules/*.ko``: the NSM driver and the modules the microVM's devices need
  (the virtio-mmio transport), decompressed from that package, their vermagic checked;
- ``init``: our bootstrap init (``init.c``), compiled static;
- ``cmdline``: the kernel command line.

Every output is a function of the package bytes and the C toolchain, so two builds on the same
machine give the same PCR1 (``blobs.json`` records the inputs and each blob's SHA-256).

If the pinned package has left the mirror (backports keep only the current build), ``--latest``
takes the current one through apt (signatures checked by apt): PCR1 then differs from a build with
the pin, and ``blobs.json`` says which package was used.
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .. import errors
from ..blobs import Blobs
from ..reference_image import _sha256_file as _sha256, apt_mirror

HERE = Path(__file__).resolve().parent
LOCK = json.loads((HERE / "kernel.lock.json").read_text())
INIT_SOURCE = HERE / "init.c"

# ttyS0 is microvm's ISA serial port (the launcher's console log). reboot=t: the init ends the VM
# with a reset, which QEMU (-no-reboot) turns into an exit; panic=-1 does the same on a panic.
# Not `quiet`: the launcher reads the boot messages to tell a failed boot from a slow one.
CMDLINE = "console=ttyS0 reboot=t panic=-1"
# -s and no build id: the binary is the same bytes on every build with the same toolchain.
CC_FLAGS = ("-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror", "-Wl,--build-id=none")


class LocalBlobsError(errors.EifBuildError):
    """The local flavour's blobs could not be made (download, package contents, compiler)."""

    code = errors.ErrorCode.LOCAL_BLOBS


def _log(message: str) -> None:
    print(f"[local-blobs] {message}", file=sys.stderr, flush=True)


def _mirror() -> str:
    return apt_mirror()


def download_pinned(dest: Path, *, mirror: str | None = None) -> Path:
    """The pinned kernel package, by its pool path, checked against the pinned SHA-256."""
    url = f"{(mirror or _mirror()).rstrip('/')}/{LOCK['pool_path']}"
    target = dest / Path(LOCK["pool_path"]).name
    if target.is_file() and _sha256(target) == LOCK["sha256"]:
        return target
    _log(f"downloading {url}")
    partial = target.with_suffix(".partial")
    try:
        with urllib.request.urlopen(url, timeout=120) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except (urllib.error.URLError, OSError) as e:
        partial.unlink(missing_ok=True)
        raise LocalBlobsError(f"cannot download the pinned kernel package {url}: {e}") from None
    digest = _sha256(partial)
    if digest != LOCK["sha256"]:
        partial.unlink()
        raise LocalBlobsError("the kernel package does not match its pin", expected=LOCK["sha256"], actual=digest)
    partial.rename(target)
    return target


def download_latest(dest: Path, *, mirror: str | None = None) -> Path:
    """The current build of the metapackage's kernel, through apt with a private configuration
    (only ``LOCK['suite']`` enabled; the machine's apt state untouched)."""
    state = dest / "apt"
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "sources").mkdir(exist_ok=True)
    (state / "sources" / "local-enclave.sources").write_text(
        f"Types: deb\nURIs: {mirror or _mirror()}\nSuites: {LOCK['suite']}\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    options = ["-o", "Dir::Etc::SourceList=/dev/null", "-o", f"Dir::Etc::SourceParts={state / 'sources'}",
               "-o", f"Dir::State::Lists={state / 'lists'}", "-o", f"Dir::Cache={state / 'cache'}",
               "-o", "APT::Sandbox::User=root"]
    try:
        subprocess.run(["apt-get", *options, "update", "-qq"], check=True, capture_output=True)
        depends = subprocess.run(["apt-cache", *options, "depends", LOCK["metapackage"]], check=True,
                                 capture_output=True, text=True).stdout
        match = re.search(r"Depends: (linux-image-\S+)", depends)
        if not match:
            raise LocalBlobsError(f"{LOCK['metapackage']} names no kernel package in {LOCK['suite']}")
        subprocess.run(["apt-get", *options, "download", "-qq", match.group(1)], check=True, cwd=dest,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", b"") or b""
        raise LocalBlobsError(f"apt could not fetch the kernel: {e} {detail.decode(errors='replace')[-500:]}") from None
    found = sorted(dest.glob(f"{match.group(1)}_*.deb"))
    if not found:
        raise LocalBlobsError(f"apt fetched no {match.group(1)} package")
    _log(f"WARNING: using {found[-1].name}, not the pinned {LOCK['package']} {LOCK['version']}: PCR1 differs "
         "from a build with the pin")
    return found[-1]


def _package_files(deb: Path) -> dict[str, bytes]:
    """The files the flavour takes from the kernel package: vmlinuz, config and the modules."""
    wanted_modules = {f"{m}.ko.xz" for m in ["nsm", *LOCK["modules"]]} | {f"{m}.ko" for m in ["nsm", *LOCK["modules"]]}
    try:
        data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise LocalBlobsError(f"dpkg-deb cannot read {deb}: {e}") from None
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for member in tf:
            name = Path(member.name).name
            if not member.isfile():
                continue
            if member.name.startswith("./boot/vmlinuz-"):
                found["vmlinuz"] = tf.extractfile(member).read()
                found["release"] = name.removeprefix("vmlinuz-").encode()
            elif member.name.startswith("./boot/config-"):
                found["config"] = tf.extractfile(member).read()
            elif "/kernel/" in member.name and name in wanted_modules:
                raw = tf.extractfile(member).read()
                found[name.split(".ko")[0]] = lzma.decompress(raw) if name.endswith(".xz") else raw
    missing = [k for k in ("vmlinuz", "config", "nsm", *LOCK["modules"]) if k not in found]
    if missing:
        raise LocalBlobsError(f"{deb.name} lacks {', '.join(missing)}")
    return found


def _vermagic(module: bytes) -> str:
    match = re.search(rb"vermagic=([^\0]+)", module)
    return match.group(1).decode(errors="replace") if match else ""


def compile_init(output: Path, *, cc: str | None = None) -> str:
    """``init.c`` → a static binary; returns the compiler's version line (recorded in blobs.json)."""
    cc = cc or os.environ.get("CC", "gcc")
    try:
        subprocess.run([cc, *CC_FLAGS, "-o", str(output), str(INIT_SOURCE)], check=True, capture_output=True)
        version = subprocess.run([cc, "--version"], check=True, capture_output=True, text=True).stdout
    except FileNotFoundError:
        raise LocalBlobsError(f"no C compiler {cc!r}: the local flavour's init is built from init.c") from None
    except subprocess.CalledProcessError as e:
        raise LocalBlobsError(f"{cc} failed on init.c: {e.stderr.decode(errors='replace')[-2000:]}") from None
    return version.splitlines()[0]


def build_blobs(output: str | os.PathLike[str], *, deb: str | os.PathLike[str] | None = None,
                mirror: str | None = None, latest: bool = False, cache_dir: str | os.PathLike[str] | None = None) -> Blobs:
    """Write the flavour's blobs directory and return it as :class:`Blobs`."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    if deb is not None:
        package = Path(deb)
    else:
        cache = Path(cache_dir) if cache_dir else Path(tempfile.mkdtemp(prefix="local-blobs-"))
        cache.mkdir(parents=True, exist_ok=True)
        package = download_latest(cache, mirror=mirror) if latest else download_pinned(cache, mirror=mirror)
    files = _package_files(package)
    release = files["release"].decode()
    for name in ("nsm", *LOCK["modules"]):
        magic = _vermagic(files[name])
        if not magic.startswith(release + " "):
            raise LocalBlobsError(f"{name}.ko was built for another kernel", expected=release, actual=magic)
    (out / "bzImage").write_bytes(files["vmlinuz"])
    (out / "bzImage.config").write_bytes(files["config"])
    (out / "cmdline").write_text(CMDLINE + "\n")
    (out / "nsm.ko").write_bytes(files["nsm"])
    modules = out / "modules"
    if modules.exists():
        shutil.rmtree(modules)
    modules.mkdir()
    for name in LOCK["modules"]:
        (modules / f"{name}.ko").write_bytes(files[name])
    compiler = compile_init(out / "init")
    blobs = Blobs.from_dir(out)
    manifest = {
        "package": package.name,
        "packageSha256": _sha256(package),
        "pinned": _sha256(package) == LOCK["sha256"],
        "kernelRelease": release,
        "cmdline": CMDLINE,
        "initCompiler": compiler,
        "blobs": {str(p.relative_to(out)): _sha256(p) for p in [blobs.kernel, blobs.init, blobs.nsm_ko, *blobs.modules]},
    }
    (out / "blobs.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return blobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enclave_build.microvm.blobs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, type=Path, help="the blobs directory to write")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--deb", type=Path, help="a local copy of the kernel package (checked like a download)")
    source.add_argument("--latest", action="store_true", help="the current kernel of the suite, not the pin")
    parser.add_argument("--mirror", help="Debian mirror (default: this machine's apt sources)")
    parser.add_argument("--cache-dir", type=Path, help="keep the downloaded package here")
    args = parser.parse_args(argv)
    try:
        build_blobs(args.output, deb=args.deb, mirror=args.mirror, latest=args.latest, cache_dir=args.cache_dir)
    except errors.EifBuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print((args.output / "blobs.json").read_text(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
