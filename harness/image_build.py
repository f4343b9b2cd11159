"""Build the harness's container image (``harness/image/``), offline and from pinned parts.

    python -m harness.image_build [--base IMAGE_ID] [--tag vault-harness:dev] [--wheels DIR]

Steps: the base is the project's debootstrapped Debian with python3 (``enclave_build``'s
``build_base``; pass ``--base`` to reuse one), so nothing comes from a container registry; the
project's wheel is built here and its dependencies are downloaded as wheels for CPython 3.11 on
x86_64 (the base's interpreter); ``docker build --network=none`` then installs them with pip run
from its own wheel. Prints the image ID. Needs a Docker engine (``DOCKER_HOST``), and root and
``debootstrap`` when no ``--base`` is given.

Unlike the reference's enclave image, this one is not meant to be bit-for-bit reproducible: its
dependencies are resolved when it is built (the enclave image's are hash-pinned, because PCR2
measures them).
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from . import sibling

IMAGE_DIR = Path(__file__).resolve().parent / "image"
DEFAULT_TAG = "vault-harness:dev"


class HarnessImageError(Exception):
    pass


def _enclave_build(module: str = ""):
    """The sibling ``enclave_build`` package (or one of its modules), wherever it is installed."""
    return importlib.import_module(sibling("enclave_build" + (f".{module}" if module else "")))


def _run(argv: list[str]) -> None:
    completed = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if completed.returncode != 0:
        raise HarnessImageError(f"{' '.join(argv[:4])} ... failed ({completed.returncode}): "
                                f"{completed.stdout.decode(errors='replace')[-3000:]}")


def project_dependencies(repo_root: Path) -> list[str]:
    return tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["dependencies"]


def stage_wheels(repo_root: Path, wheels: Path) -> None:
    """The project's wheel (built from ``repo_root``), its dependencies and pip, in ``wheels``."""
    WHEEL_TARGET = _enclave_build("reference_image").WHEEL_TARGET
    wheels.mkdir(parents=True, exist_ok=True)
    for stale in wheels.glob("nitro_vault_reference-*.whl"):
        stale.unlink()
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(repo_root)])
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheels), *WHEEL_TARGET, "pip",
          *project_dependencies(repo_root)])


def build(repo_root: Path, *, base_image: str | None = None, tag: str = DEFAULT_TAG, wheels: Path | None = None,
          client=None) -> str:
    ri = _enclave_build("reference_image")
    client = client or ri.docker_client()
    base_image = base_image or ri.build_base(client)
    with tempfile.TemporaryDirectory(prefix="vault-harness-image-") as tmp:
        context = Path(tmp, "context")
        context.mkdir()
        for name in ("Dockerfile", "install.sh"):
            shutil.copy2(IMAGE_DIR / name, context / name)
        staged = context / "wheels"
        if wheels is not None:
            stage_wheels(repo_root, wheels)
            shutil.copytree(wheels, staged)
        else:
            stage_wheels(repo_root, staged)
        try:
            image, _ = client.images.build(path=str(context), tag=tag, buildargs={"BASE_IMAGE": base_image},
                                           network_mode="none", rm=True, forcerm=True)
        except Exception as error:  # docker.errors.BuildError / APIError: the log says why
            log = "".join(str(part.get("stream", "")) for part in getattr(error, "build_log", []) or [])
            raise HarnessImageError(f"docker build: {error}\n{log[-3000:]}") from None
    return image.id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.image_build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", help="base image ID (default: debootstrap one, as the enclave image does)")
    parser.add_argument("--tag", default=DEFAULT_TAG, help="tag of the image (default %(default)s)")
    parser.add_argument("--wheels", type=Path, help="keep downloaded wheels here between builds")
    parser.add_argument("--repo-root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)
    EifBuildError = _enclave_build("errors").EifBuildError
    try:
        image_id = build(args.repo_root, base_image=args.base, tag=args.tag, wheels=args.wheels)
    except (HarnessImageError, EifBuildError) as error:
        print(f"harness image: {error}", file=sys.stderr)
        return 1
    print(image_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
