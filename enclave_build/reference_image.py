"""The reference Vault's enclave image and EIF, and the "verify, don't trust" walk (§9.5.3, §9.9).

    python -m enclave_build.reference_image base                 # debootstrap a pinned base image
    python -m enclave_build.reference_image build --output DIR   # image -> EIF -> measurements
    python -m enclave_build.reference_image walk --synthetic-blobs
        # build -> describe -> serve (the very image, under Docker) -> attest -> compare

The image is ``enclave_build/image/Dockerfile``; its build context is staged here: the Dockerfile,
``install.sh``, the hash-pinned ``requirements.txt`` with the wheels it names (downloaded by pip
beforehand, installed offline), pip's own wheel (``installer.sha256``) and the reference's source.
``docker build --network=none`` on a base pinned by image ID or digest: no step fetches anything,
every file the image adds has the mtime ``SOURCE_DATE_EPOCH``, so the customer ramdisk and PCR2 are
the same on every build from the same base (PCR1 depends on the blobs only, PCR0 on both).

The base: ``debootstrap --variant=minbase`` of Debian with python3, normalised, ``docker import``-ed
and pinned by its image ID (there is no image registry here); elsewhere any ``python:3.11-slim``
pinned by digest works the same way (``enclave_build/image/README.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Sequence

from . import errors, sibling
from .blobs import Blobs
from .build import BuildResult, build_eif_from_docker, write_measurements
from .describe import describe_json, inspect_eif

IMAGE_DIR = Path(__file__).resolve().parent / "image"
CONTEXT_FILES = ("Dockerfile", "install.sh", "requirements.txt", "installer.sha256")

SOURCE_DATE_EPOCH = 1735689600  # 2025-01-01T00:00:00Z; the Dockerfile's ARG default is the same
BASE_SUITE = "bookworm"  # Debian 12: python3 is 3.11, glibc 2.36
BASE_PACKAGES = ("python3",)
BASE_REPOSITORY = "vault-reference-base"
IMAGE_REPOSITORY = "vault-reference-enclave"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

# What `pip download` asks for: the interpreter and platform of the base (CPython 3.11, x86_64 glibc).
WHEEL_TARGET = (
    "--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11",
    "--abi", "cp311", "--abi", "abi3", "--abi", "none",
    "--platform", "manylinux_2_36_x86_64", "--platform", "manylinux_2_28_x86_64",
    "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
)

# Paths a debootstrap leaves that are caches, logs, host copies or build-time state (base only).
_BASE_DROP = (
    "var/cache/apt", "var/lib/apt/lists", "var/cache/ldconfig/aux-cache", "var/cache/debconf/templates.dat-old",
    "var/cache/debconf/config.dat-old", "var/lib/dpkg/status-old", "var/lib/dpkg/diversions-old",
    "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-",
    "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale",
)
_EMPTY_DIRS = ("dev", "run", "tmp", "var/log", "var/tmp", "proc", "sys")


class ReferenceImageError(errors.EifBuildError):
    """Building the reference's image failed (the engine, debootstrap, pip or a pinned hash)."""

    code = errors.ErrorCode.DOCKER


def _log(message: str) -> None:
    print(f"[reference-image] {message}", file=sys.stderr, flush=True)


def docker_client(timeout: int = 900):
    """A Docker SDK client from the environment (``DOCKER_HOST``), with a build-sized timeout."""
    try:
        import docker

        return docker.from_env(timeout=timeout)
    except Exception as e:  # ImportError or docker.errors.DockerException
        raise ReferenceImageError(f"no Docker engine: {e}") from None


# --- the base ------------------------------------------------------------------------------------


def apt_mirror(sources: Sequence[Path] | None = None) -> str:
    """The Debian mirror of this machine's apt sources (deb822 ``URIs:`` or one-line ``deb``)."""
    if sources is None:
        d = Path("/etc/apt")
        sources = sorted(d.glob("sources.list.d/*.sources")) + [d / "sources.list"] + sorted(d.glob("sources.list.d/*.list"))
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            m = re.match(r"URIs:\s*(\S+)", line) or re.match(r"deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+\S+", line)
            if m and "security" not in m.group(1) and m.group(1).startswith(("http://", "https://")):
                return m.group(1).rstrip("/")
    return DEFAULT_MIRROR


def normalise_rootfs(root: Path, source_date_epoch: int = SOURCE_DATE_EPOCH) -> None:
    """Make a debootstrapped tree independent of the build's time and host: drop caches, logs and
    host copies, compiled bytecode, the shadow files' "last changed" day; clamp mtimes."""
    for rel in _BASE_DROP:
        p = root / rel
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    for rel in _EMPTY_DIRS:
        d = root / rel
        if d.is_dir():
            for child in d.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    for dirpath, dirnames, _ in os.walk(root):
        if "__pycache__" in dirnames:
            shutil.rmtree(Path(dirpath, "__pycache__"))
            dirnames.remove("__pycache__")
    shadow = root / "etc/shadow"  # field 3: the day of the last password change (build day)
    if shadow.is_file():
        lines = []
        for line in shadow.read_text().splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[2]:
                fields[2] = str(source_date_epoch // 86400)
            lines.append(":".join(fields))
        shadow.write_text("\n".join(lines) + "\n")
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames + [""]:
            p = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(p)
            if st.st_mtime > source_date_epoch:
                os.utime(p, (source_date_epoch, source_date_epoch), follow_symlinks=False)


def rootfs_tar(root: Path, output: Path, source_date_epoch: int = SOURCE_DATE_EPOCH) -> str:
    """A deterministic tar of ``root`` (sorted names, clamped mtimes, numeric owners); its sha256."""

    def clean(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        ti.mtime = min(int(ti.mtime), source_date_epoch)
        ti.uname = ti.gname = ""
        ti.pax_headers = {}
        return ti

    with tarfile.open(output, "w", format=tarfile.GNU_FORMAT) as tf:
        for name in sorted(os.listdir(root)):
            tf.add(root / name, arcname=name, recursive=True, filter=clean)
    h = hashlib.sha256()
    with open(output, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def build_base(client: Any = None, *, suite: str = BASE_SUITE, mirror: str | None = None,
               packages: Sequence[str] = BASE_PACKAGES, source_date_epoch: int = SOURCE_DATE_EPOCH,
               tag: str | None = None, workdir: str | os.PathLike[str] | None = None) -> str:
    """``debootstrap --variant=minbase`` + python3, normalised, ``docker import``-ed: its image ID.

    Needs root and ``debootstrap`` (and Debian's archive keyring). Pin the result by the returned
    ID: ``docker import`` stamps the time, so the ID differs per import even for the same tar.
    """
    if shutil.which("debootstrap") is None:
        raise ReferenceImageError("debootstrap is not installed (Debian: apt-get install debootstrap)")
    client = client or docker_client()
    mirror = mirror or apt_mirror()
    tag = tag or f"{BASE_REPOSITORY}:{suite}"
    with tempfile.TemporaryDirectory(dir=workdir, prefix="vault-base-") as tmp:
        root = Path(tmp, "rootfs")
        argv = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, str(root), mirror]
        _log(f"{' '.join(argv)}")
        t0 = time.monotonic()
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "LC_ALL": "C"})
        if proc.returncode != 0:
            tail = proc.stdout.decode(errors="replace")[-3000:]
            raise ReferenceImageError(f"debootstrap failed ({proc.returncode}): {tail}")
        _log(f"debootstrap: {time.monotonic() - t0:.0f} s")
        normalise_rootfs(root, source_date_epoch)
        tar = Path(tmp, "rootfs.tar")
        digest = rootfs_tar(root, tar, source_date_epoch)
        repository, _, version = tag.rpartition(":")
        try:
            client.api.import_image_from_file(str(tar), repository=repository, tag=version)
            image = client.images.get(tag)
        except Exception as e:
            raise ReferenceImageError(f"docker import: {e}") from None
    layers = image.attrs.get("RootFS", {}).get("Layers", [])
    if layers != [digest]:
        raise ReferenceImageError("imported base layer is not the tar written", expected=[digest], actual=layers)
    _log(f"base {tag}: image {image.id}, layer {digest}")
    return image.id


# --- wheels and the build context ----------------------------------------------------------------


def read_requirements(path: Path) -> dict[str, tuple[str, list[str]]]:
    """``name==version --hash=sha256:...`` lines (with ``\\`` continuations) → {name: (version, hashes)}."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"([A-Za-z0-9._-]+)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})+)\s*$", line)
        if not m:
            raise ReferenceImageError(f"{path}: not a pinned, hashed requirement: {line!r}")
        out[m.group(1).lower()] = (m.group(2), re.findall(r"sha256:([0-9a-f]{64})", m.group(3)))
    return out


def read_installer(path: Path) -> tuple[str, str]:
    """``installer.sha256``: one ``<sha256>  <pip wheel file>`` line → (hash, file name)."""
    digest, name = path.read_text().split()
    return digest, name


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _pip(argv: list[str]) -> None:
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise ReferenceImageError(f"pip download failed ({proc.returncode}): {proc.stdout.decode(errors='replace')[-3000:]}")


def fetch_wheels(image_dir: Path, wheel_dir: Path) -> list[Path]:
    """The wheels ``requirements.txt`` and ``installer.sha256`` pin, in ``wheel_dir``.

    Reuses files whose hash is pinned; downloads the rest with ``pip download --require-hashes``
    (the machine's pip configuration applies). Returns exactly the pinned files.
    """
    wheel_dir.mkdir(parents=True, exist_ok=True)
    reqs = read_requirements(image_dir / "requirements.txt")
    pip_hash, pip_name = read_installer(image_dir / "installer.sha256")
    wanted = {h for _, hashes in reqs.values() for h in hashes} | {pip_hash}

    def present() -> dict[str, Path]:
        found = {}
        for p in wheel_dir.glob("*.whl"):
            h = _sha256_file(p)
            if h in wanted:
                found[h] = p
        return found

    found = present()
    missing = {n for n, (_, hashes) in reqs.items() if not set(hashes) & set(found)}
    if missing:
        _log(f"pip download: {', '.join(sorted(missing))}")
        argv = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes",
                "--dest", str(wheel_dir), *WHEEL_TARGET, "-r", str(image_dir / "requirements.txt")]
        _pip(argv)
    if pip_hash not in found:
        version = pip_name.split("-")[1]
        _pip([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(wheel_dir),
              *WHEEL_TARGET, f"pip=={version}"])
    found = present()
    for name, (version, hashes) in reqs.items():
        if not set(hashes) & set(found):
            raise ReferenceImageError(f"no wheel for {name}=={version} with a pinned hash", expected=hashes)
    if pip_hash not in found or found[pip_hash].name != pip_name:
        raise ReferenceImageError("installer wheel missing or renamed", expected=f"{pip_name} {pip_hash}")
    return sorted(found.values())


def stage_context(repo_root: Path, context: Path, wheel_dir: Path) -> Path:
    """The build context: Dockerfile, install.sh, the locks, the pinned wheels, the reference source.

    The source is the ``reference`` package's ``*.py`` files only (no caches, no stray files);
    ``enclave_build/image`` is taken from ``repo_root`` when it has one, else from this package.
    """
    repo_root = Path(repo_root)
    image_dir = repo_root / "enclave_build" / "image"
    if not (image_dir / "Dockerfile").is_file():
        image_dir = IMAGE_DIR
    source = repo_root / "reference"
    if not (source / "cli.py").is_file():
        raise ReferenceImageError(f"{repo_root}: no reference package")
    context.mkdir(parents=True, exist_ok=True)
    for name in CONTEXT_FILES:
        shutil.copyfile(image_dir / name, context / name)
    wheels = context / "wheels"
    wheels.mkdir()
    for p in fetch_wheels(image_dir, wheel_dir):
        shutil.copyfile(p, wheels / p.name)
    app = context / "app" / "reference"
    for path in sorted(source.rglob("*.py")):
        rel = path.relative_to(source)
        if "__pycache__" in rel.parts:
            continue
        (app / rel.parent).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, app / rel)
    return context


def _check_pinned(base_image: str) -> None:
    if not re.fullmatch(r"(sha256:[0-9a-f]{64})|([^@\s]+@sha256:[0-9a-f]{64})", base_image):
        raise ReferenceImageError("the base must be pinned: an image ID (sha256:...) or name@sha256:digest",
                                  actual=base_image)


def build_reference_image(repo_root: str | os.PathLike[str], *, base_image: str, client: Any = None,
                          wheel_dir: str | os.PathLike[str] | None = None, tag: str | None = None,
                          no_cache: bool = False, source_date_epoch: int | None = None,
                          workdir: str | os.PathLike[str] | None = None) -> str:
    """``docker build --network=none`` of the reference's enclave image on a pinned base: its image ID."""
    _check_pinned(base_image)
    client = client or docker_client()
    with tempfile.TemporaryDirectory(dir=workdir, prefix="vault-image-ctx-") as tmp:
        wheels = Path(wheel_dir) if wheel_dir else Path(tmp, "wheel-cache")
        context = stage_context(Path(repo_root), Path(tmp, "context"), wheels)
        buildargs = {"BASE_IMAGE": base_image}
        if source_date_epoch is not None:
            buildargs["SOURCE_DATE_EPOCH"] = str(source_date_epoch)
        t0 = time.monotonic()
        try:
            image, _ = client.images.build(path=str(context), tag=tag or f"{IMAGE_REPOSITORY}:latest",
                                           buildargs=buildargs, network_mode="none", rm=True, forcerm=True,
                                           nocache=no_cache, pull=False)
        except Exception as e:
            log = "".join(str(x.get("stream", x.get("error", ""))) for x in getattr(e, "build_log", []) or [])
            raise ReferenceImageError(f"docker build: {e}\n{log[-4000:]}") from None
    _log(f"image {image.id} ({time.monotonic() - t0:.0f} s)")
    return image.id


LOCAL_IMAGE_DIR = IMAGE_DIR / "local"


def build_local_image(image: str, *, client: Any = None, tag: str | None = None) -> str:
    """The local enclave flavour of ``image`` (§9.11): the same filesystem, the microVM's command
    (``image/local/Dockerfile``: one CMD, no step). Its image ID."""
    client = client or docker_client()
    try:
        built, _ = client.images.build(path=str(LOCAL_IMAGE_DIR), tag=tag or f"{IMAGE_REPOSITORY}:local",
                                       buildargs={"BASE_IMAGE": image}, network_mode="none", rm=True,
                                       forcerm=True, pull=False)
    except Exception as e:
        raise ReferenceImageError(f"docker build (local flavour): {e}") from None
    return built.id


# --- the EIF -------------------------------------------------------------------------------------


def measurements_path(eif: str | os.PathLike[str]) -> Path:
    """Where the expected PCRs go: ``app.eif`` → ``app.measurements.json`` (describe-eif's shape)."""
    p = Path(eif)
    return p.with_name(p.stem + ".measurements.json")


def build_reference_eif(blobs: Blobs, output: str | os.PathLike[str], *, image: str | None = None,
                        repo_root: str | os.PathLike[str] | None = None, base_image: str | None = None,
                        client: Any = None, **image_kw: Any) -> BuildResult:
    """Build the image (unless ``image`` names one), then the EIF, then its measurements file."""
    client = client or docker_client()
    if image is None:
        if base_image is None:
            raise ReferenceImageError("need an image, or a pinned base_image to build one")
        image = build_reference_image(repo_root or default_repo_root(), base_image=base_image, client=client, **image_kw)
    t0 = time.monotonic()
    result = build_eif_from_docker(image, blobs, output, client=client, image_name=IMAGE_REPOSITORY)
    write_measurements(measurements_path(output), result)
    _log(f"EIF {output}: {result.eif_size} bytes ({time.monotonic() - t0:.0f} s)")
    return result


def default_repo_root() -> Path:
    """The checkout this package sits in (the ``reference`` package next to ``enclave_build``)."""
    return Path(__file__).resolve().parent.parent


SYNTHETIC_CMDLINE = (
    b"reboot=k panic=30 pci=off nomodules console=ttyS0 i8042.noaux i8042.nomux "
    b"i8042.nopnp i8042.dumbkbd random.trust_cpu=on"
)


def write_synthetic_blobs(directory: str | os.PathLike[str]) -> Blobs:
    """Small stand-ins for nitro-cli's blobs (nitro-cli's file names and cmdline; NOT bootable).

    The real kernel, init and nsm.ko are not obtainable here: PCR0/PCR1 computed with these are
    arithmetic checks only; PCR2 (the image) is the same as with the real blobs.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "bzImage").write_bytes(b"MZ-synthetic-kernel" + bytes(range(256)) * 4)
    (d / "bzImage.config").write_text("#\n# Automatically generated file; DO NOT EDIT.\n"
                                      "# Linux/x86_64 4.14.256-209.484.amzn2.x86_64 Kernel Configuration\n#\n")
    (d / "cmdline").write_bytes(SYNTHETIC_CMDLINE + b"\n")
    (d / "init").write_bytes(b"\x7fELF-synthetic-init" * 37)
    (d / "nsm.ko").write_bytes(b"\x7fELF-synthetic-nsm" * 11)
    return Blobs.from_dir(d)


# --- serving the measured image (the local stand-in for the hypervisor, EIF.md §6) ---------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, ready: Callable[[], bool], alive: Callable[[], str | None], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = alive()
        if dead is not None:
            raise ReferenceImageError(f"{what} exited: {dead}")
        if ready():
            return
        time.sleep(0.2)
    raise ReferenceImageError(f"{what} not ready after {timeout:.0f} s")


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclasses.dataclass
class ServedVault:
    """The enclave side (a container of the measured image, or the EIF booted in a microVM by the
    launcher process), the host front as a local process."""

    url: str
    container: Any
    host_process: subprocess.Popen
    launcher: subprocess.Popen | None = None
    ready: dict[str, Any] | None = None  # the launcher's "ready" event (boot time, PCRs)

    def stop(self) -> str:
        logs = ""
        for process in (self.host_process, self.launcher):
            if process is not None:
                _terminate(process)
        if self.launcher is not None:
            return self.launcher.stdout.read().decode(errors="replace") if self.launcher.stdout else ""
        try:
            logs = self.container.logs().decode(errors="replace")
        except Exception:
            pass
        try:
            self.container.remove(force=True)
        except Exception:
            pass
        return logs


def _terminate(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def eif_image_id(eif: str | os.PathLike[str]) -> str:
    """The image ID the EIF's metadata records (DockerInfo.Id): the image that went into it."""
    with open(eif, "rb") as f:
        info = inspect_eif(f)
    image_id = ((info.metadata or {}).get("DockerInfo") or {}).get("Id")
    if not image_id:
        raise ReferenceImageError(f"{eif}: no DockerInfo.Id in the metadata")
    return image_id


def hypervisor_pcrs(eif: str | os.PathLike[str]) -> dict[str, Any]:
    """The PCRs a launcher attests, computed from the EIF's bytes (§9.9), not read from a file."""
    with open(eif, "rb") as f:
        info = inspect_eif(f)
    if not info.crc_ok:
        raise ReferenceImageError(f"{eif}: CRC mismatch")
    return {"Measurements": info.measurements.to_json_obj()}


def serve_image(image: str, pcrs: dict[str, Any], *, client: Any = None, http_port: int | None = None,
                timeout: float = 60) -> ServedVault:
    """``docker run --network host`` the image's enclave side with a simulated NSM attesting
    ``pcrs`` (copied into the container before it starts), then ``vault-reference host`` in front."""
    client = client or docker_client()
    enclave_port, http_port = free_port(), http_port or free_port()
    command = ["vault-reference", "enclave", "--listen", f"tcp:127.0.0.1:{enclave_port}",
               "--data-dir", "/tmp/vault-data", "--nsm", "simulated", "--pcrs-file", "/run/vault-pcrs.json",
               # The image has no KMS client (boto3 is not in its lock) nor the mock: the walk checks
               # PCRs, not key release, so it uses the development key file (spec 11.2).
               "--insecure-dev-master-key-file"]
    try:
        container = client.containers.create(image, command=command, network_mode="host")
    except Exception as e:
        raise ReferenceImageError(f"docker create: {e}") from None
    try:
        data = json.dumps(pcrs, indent=2).encode() + b"\n"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            ti = tarfile.TarInfo("vault-pcrs.json")
            ti.size, ti.mode = len(data), 0o644
            tf.addfile(ti, io.BytesIO(data))
        container.put_archive("/run", buf.getvalue())
        container.start()

        def container_dead() -> str | None:
            container.reload()
            if container.status in ("exited", "dead"):
                return container.logs().decode(errors="replace")
            return None

        _wait("enclave container", lambda: _tcp_open(enclave_port), container_dead, timeout)
        url, host_process = _start_host_front(enclave_port, http_port, lambda: None, timeout)
        return ServedVault(url=url, container=container, host_process=host_process)
    except BaseException:
        try:
            container.remove(force=True)
        except Exception:
            pass
        raise


def _start_host_front(enclave_port: int, http_port: int, alive: Callable[[], str | None],
                      timeout: float) -> tuple[str, subprocess.Popen]:
    host_process = subprocess.Popen(
        [sys.executable, "-m", sibling("reference.cli"), "host", "--enclave", f"tcp:127.0.0.1:{enclave_port}",
         "--port", str(http_port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"

    def host_dead() -> str | None:
        if host_process.poll() is None:
            return alive()
        return host_process.stdout.read().decode(errors="replace")

    try:
        _wait("host front", lambda: _http_ok(url + "/health"), host_dead, timeout)
    except BaseException:
        _terminate(host_process)
        raise
    return url, host_process


def serve_local(eif: str | os.PathLike[str], *, http_port: int | None = None, boot_timeout: float | None = None,
                launcher_args: Sequence[str] = ()) -> ServedVault:
    """Boot ``eif`` in a microVM (``vault-eif run``, §9.11), then the host front.
    The launcher computes the PCRs from the EIF's bytes and hands them to the guest's NSM."""
    enclave_port, http_port = free_port(), http_port or free_port()
    argv = [sys.executable, "-m", sibling("enclave_build.cli"), "run", str(eif),
            "--port", str(enclave_port), *launcher_args]
    if boot_timeout is not None:
        argv += ["--boot-timeout", str(boot_timeout)]
    launcher = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        ready, said = None, []
        for line in launcher.stdout:  # JSON events, one per line; anything else is an error message
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if not isinstance(event, dict):
                said.append(line.decode(errors="replace").rstrip())
                _log(said[-1])
                continue
            if event.get("event") == "boot-failed":
                _log(f"boot attempt {event.get('attempt')} failed ({event.get('reason')}); trying again")
            if event.get("event") == "ready":
                ready = event
                break
        if ready is None:
            launcher.wait()
            raise ReferenceImageError(f"the microVM launcher exited ({launcher.returncode}) before the enclave "
                                      "answered: " + "\n".join(said[-100:]))  # its error and the console tail it quotes
        _log(f"enclave up in {ready['bootSeconds']} s (boot attempt {ready['attempt']})")

        def launcher_dead() -> str | None:
            return None if launcher.poll() is None else f"the launcher exited ({launcher.returncode})"

        url, host_process = _start_host_front(enclave_port, http_port, launcher_dead, 60)
        return ServedVault(url=url, container=None, host_process=host_process, launcher=launcher, ready=ready)
    except BaseException:
        _terminate(launcher)
        raise


# The profiles the Docker walk requires. Not `kms`: there the image's enclave runs on the development key
# file (serve_image), as no KMS is reachable from the container; the key-release checks run against the
# embedded default (the README's main job) and against the local flavour, whose launcher proxies KMS.
WALK_PROFILES = "core,accounts,attestation"
# The local flavour boots through the launcher's KMS proxy (spec 9.11): key release is checked too.
LOCAL_WALK_PROFILES = WALK_PROFILES + ",kms"


def run_harness(url: str, expected_pcrs: str | os.PathLike[str], extra: Sequence[str] = (),
                root: str | os.PathLike[str] | None = None, profiles: str = WALK_PROFILES) -> int:
    """``vault-harness run --profile WALK_PROFILES --expected-pcrs FILE`` with the root pinned from
    ``root`` (the local launcher's NSM root), else taken from the target (a container's simulated NSM):
    its exit status. ``extra`` may add a second ``--profile`` or ``--select``."""
    trust = ["--attestation-root", str(root)] if root is not None else ["--attestation-root-from-target"]
    argv = [sys.executable, "-m", sibling("harness.cli"), "run", "--target", url, "--profile", profiles,
            *trust, "--expected-pcrs", str(expected_pcrs), *extra]
    _log(" ".join(["vault-harness", *argv[3:]]))
    return subprocess.run(argv).returncode


# --- the CLI -------------------------------------------------------------------------------------


def _blobs(args: argparse.Namespace, work: Path) -> Blobs:
    if args.local_enclave and not args.blobs:
        from .microvm.blobs import build_blobs

        _log("local enclave flavour: Debian's cloud kernel and our init (§9.11)")
        return build_blobs(work / "local-blobs", cache_dir=args.kernel_cache)
    if args.synthetic_blobs:
        _log("synthetic blobs (not bootable): PCR0/PCR1 are arithmetic checks only")
        return write_synthetic_blobs(work / "blobs")
    return Blobs.from_dir(args.blobs)


def _base(args: argparse.Namespace, client: Any, work: Path) -> str:
    if args.base:
        return args.base
    t0 = time.monotonic()
    image_id = build_base(client, workdir=work)
    _log(f"base built in {time.monotonic() - t0:.0f} s; pin it with --base {image_id}")
    return image_id


def _build(args: argparse.Namespace, client: Any, work: Path) -> tuple[Path, BuildResult]:
    blobs = _blobs(args, work)
    base = _base(args, client, work)
    out_dir = Path(args.output or work)
    out_dir.mkdir(parents=True, exist_ok=True)
    eif = out_dir / "vault-reference.eif"
    image = build_reference_image(args.repo_root, base_image=base, client=client, wheel_dir=args.wheel_dir,
                                  no_cache=args.no_cache, workdir=work)
    if args.local_enclave:
        image = build_local_image(image, client=client)
    result = build_reference_eif(blobs, eif, image=image, client=client)
    return eif, result


def cmd_base(args: argparse.Namespace) -> int:
    print(build_base(docker_client(), mirror=args.mirror, tag=args.tag))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="vault-build-") as tmp:
        eif, result = _build(args, docker_client(), Path(tmp))
        print(json.dumps(result.to_json_obj(), indent=2))
        _log(f"wrote {eif} and {measurements_path(eif)}")
    return 0


def cmd_walk(args: argparse.Namespace) -> int:
    """build → describe → serve → attest → compare; the harness's exit status."""
    client = docker_client()
    with tempfile.TemporaryDirectory(prefix="vault-walk-") as tmp:
        work = Path(tmp)
        # 1. build: image, EIF, and the expected PCRs a verifier keeps (the measurements file)
        eif, _ = _build(args, client, work)
        expected = measurements_path(eif)
        # 2. describe: read the EIF back, as nitro-cli describe-eif does
        with open(eif, "rb") as f:
            print(json.dumps(describe_json(inspect_eif(f)), indent=2), flush=True)
        # 3. serve: the EIF itself booted in a microVM (local flavour), or the very image recorded in
        # the EIF under Docker; either way the PCRs are computed from the EIF by the launcher
        root = None
        if args.local_enclave:
            _log("booting the EIF in a microVM")
            vault = serve_local(eif)
            # The documents are the launcher's, outside the VM: the verifier pins its root, and
            # trusts nothing the target says about its own attestation.
            root = work / "launcher-nsm-root.pem"
            root.write_text(vault.ready["nsmRootPem"])
        else:
            image = eif_image_id(eif)
            _log(f"serving image {image} under Docker (host network)")
            vault = serve_image(image, hypervisor_pcrs(eif), client=client)
        try:
            # 4-5. attest and compare: the harness checks the attested PCRs against the expected set
            status = run_harness(vault.url, expected, args.harness_arg or (), root=root,
                                 profiles=LOCAL_WALK_PROFILES if args.local_enclave else WALK_PROFILES)
        finally:
            logs = vault.stop()
        if status != 0:
            _log(f"harness failed ({status}); enclave container log:\n{logs}")
        _log(f"walk {'passed' if status == 0 else 'FAILED'}")
        return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enclave_build.reference_image", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    base = sub.add_parser("base", help="debootstrap, normalise and docker import the base; print its image ID")
    base.add_argument("--mirror", help="Debian mirror (default: this machine's apt sources)")
    base.add_argument("--tag", help=f"tag for the base (default {BASE_REPOSITORY}:{BASE_SUITE})")
    base.set_defaults(func=cmd_base)
    for name, func, text in (("build", cmd_build, "build the image, the EIF and its measurements file"),
                             ("walk", cmd_walk, "build → describe → serve → attest → compare")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--base", help="pinned base (image ID or name@sha256:...); default: build one now")
        blobs = p.add_mutually_exclusive_group()
        blobs.add_argument("--blobs", help="nitro-cli blobs directory (default $NITRO_CLI_BLOBS, then nitro-cli's)")
        blobs.add_argument("--synthetic-blobs", action="store_true", help="small non-bootable stand-ins (tests)")
        p.add_argument("--local-enclave", action="store_true",
                       help="the local flavour (§9.11): Debian's kernel and our init as blobs (unless --blobs), the "
                            "microVM's command" + ("; serve by booting the EIF in a microVM" if name == "walk" else ""))
        p.add_argument("--kernel-cache", type=Path, help="keep the downloaded kernel package here (--local-enclave)")
        p.add_argument("--repo-root", type=Path, default=default_repo_root(), help="the checkout to build from")
        p.add_argument("--wheel-dir", type=Path, help="cache of the pinned wheels (default: download each time)")
        p.add_argument("--no-cache", action="store_true", help="docker build --no-cache")
        p.add_argument("--output", type=Path, help="directory for the EIF and measurements" +
                       (" (default: a temporary one)" if name == "walk" else " (default: current directory)"))
        if name == "walk":
            p.add_argument("--harness-arg", action="append", help="extra vault-harness run argument (repeatable)")
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    if args.command == "build" and args.output is None:
        args.output = Path.cwd()
    try:
        return args.func(args)
    except errors.EifBuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
