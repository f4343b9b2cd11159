"""``vault-eif``: build, describe, sign and measure EIFs (nitro-cli's build-enclave, describe-eif,
sign-eif and pcr), and run one in a local microVM (``run``, the local flavour of §9.11).

Output JSON uses nitro-cli's field names (docs/spec/09-eif.md §9.8). Errors print
``error: [code] message`` on stderr and exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from . import errors
from .blobs import Blobs
from .build import build_eif, sign_eif, write_measurements
from .describe import describe_json, inspect_eif
from .image import ArchiveImageSource, DockerImageSource
from .microvm import launcher
from .metadata import parse_custom_metadata
from .pcr import pcr_of_certificate, pcr_of_stream
from .signing import SigningKey


def _print(obj: object) -> None:
    # serde_json::to_string_pretty: two-space indent, non-ASCII kept as is.
    print(json.dumps(obj, indent=2, ensure_ascii=False))


def _cmd_build(a: argparse.Namespace) -> int:
    blobs = Blobs.from_dir(a.blobs, arch=a.arch)
    key = None
    if bool(a.signing_certificate) != bool(a.private_key):
        raise errors.SigningError("--signing-certificate and --private-key go together", code=errors.ErrorCode.BAD_KEY)
    if a.signing_certificate:
        key = SigningKey.from_pem(Path(a.signing_certificate).read_bytes(), Path(a.private_key).read_bytes())
    custom = parse_custom_metadata(Path(a.metadata).read_bytes()) if a.metadata else None
    source = ArchiveImageSource(a.image_archive) if a.image_archive else DockerImageSource(a.docker_uri)
    print("Start building the Enclave Image...", file=sys.stderr)
    try:
        result = build_eif(
            source, blobs, a.output_file, signing_key=key, image_name=a.name, image_version=a.version, custom_metadata=custom
        )
    finally:
        if isinstance(source, ArchiveImageSource):
            source.close()
    print("Enclave Image successfully created.", file=sys.stderr)
    if a.measurements_file:
        write_measurements(a.measurements_file, result)
    _print(result.to_json_obj())
    return 0


def _cmd_describe(a: argparse.Namespace) -> int:
    with open(a.eif_path, "rb", buffering=0) as f:
        info = inspect_eif(f, check_crc=False)
    described = describe_json(info)
    _print(described)
    # A signature that fails verification is a failure, never exit 0 (the JSON still says which).
    return 0 if info.crc_ok and described.get("SignatureCheck", True) is not False else 1


def _cmd_pcr(a: argparse.Namespace) -> int:
    if a.signing_certificate:
        _print({"PCR8": pcr_of_certificate(Path(a.signing_certificate).read_bytes())})
    else:
        with open(a.input, "rb", buffering=0) as f:
            _print({"PCR": pcr_of_stream(f)})
    return 0


def _cmd_sign(a: argparse.Namespace) -> int:
    key = SigningKey.from_pem(Path(a.signing_certificate).read_bytes(), Path(a.private_key).read_bytes())
    meas = sign_eif(a.eif_path, a.output_file or a.eif_path, key)
    _print({"Measurements": meas.to_json_obj()})
    return 0


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vault-eif", description="Build and measure AWS Nitro Enclave image files.")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build an EIF from a Docker image or an image archive")
    src = b.add_mutually_exclusive_group(required=True)
    src.add_argument("--docker-uri", help="image in the Docker engine (DOCKER_HOST honoured)")
    src.add_argument("--image-archive", help="docker save / OCI image-layout tar (no engine needed)")
    b.add_argument("--output-file", required=True)
    b.add_argument("--blobs", help="blobs directory (default: $NITRO_CLI_BLOBS)")
    b.add_argument("--arch", default="x86_64", choices=["x86_64", "aarch64"])
    b.add_argument("--signing-certificate")
    b.add_argument("--private-key")
    b.add_argument("--name")
    b.add_argument("--version")
    b.add_argument("--metadata", help="custom metadata JSON file")
    b.add_argument("--measurements-file", help="also write the measurements JSON here")
    b.set_defaults(func=_cmd_build)

    d = sub.add_parser("describe", help="validate an EIF and print nitro-cli's describe-eif JSON")
    d.add_argument("--eif-path", required=True)
    d.set_defaults(func=_cmd_describe)

    s = sub.add_parser("sign", help="sign an existing EIF (replaces any signature); PCR8 is added")
    s.add_argument("--eif-path", required=True)
    s.add_argument("--signing-certificate", required=True)
    s.add_argument("--private-key", required=True)
    s.add_argument("--output-file", help="default: sign in place")
    s.set_defaults(func=_cmd_sign)

    c = sub.add_parser("pcr", help="PCR of a file, or PCR8 of a signing certificate")
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--input")
    g.add_argument("--signing-certificate")
    c.set_defaults(func=_cmd_pcr)

    # nitro-cli run-enclave, on a machine with no Nitro: the local flavour's microVM (§9.11)
    r = sub.add_parser("run", help="boot an EIF in a local QEMU microVM and relay its link to a TCP port")
    launcher.add_run_arguments(r)
    r.set_defaults(func=launcher.run_from_args)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except errors.EifBuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
