"""The metadata section (docs/spec/09-eif.md §9.7): compact JSON, never measured."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from typing import Any, Mapping

from . import errors

BUILD_TOOL = "vault-eif"
UNKNOWN = "Unknown"
MAX_CUSTOM_METADATA_SIZE = 4096  # same bound as nitro-cli's --metadata file

# serde_json's recursion limit: nitro-cli refuses deeper JSON, and Python's json would raise
# RecursionError (not ValueError) somewhere past ~1000 levels, so we bound it ourselves first.
MAX_JSON_DEPTH = 128

_BUILD_KEYS = ("BuildTime", "BuildTool", "BuildToolVersion", "OperatingSystem", "KernelVersion")


def _tool_version() -> str:
    try:
        from importlib.metadata import version

        return version("nitro-vault-reference")
    except Exception:  # pragma: no cover - not installed as a distribution
        return "0"


@dataclasses.dataclass(frozen=True, kw_only=True)
class BuildInfo:
    build_time: str
    build_tool: str = BUILD_TOOL
    build_tool_version: str = dataclasses.field(default_factory=_tool_version)
    operating_system: str = UNKNOWN
    kernel_version: str = UNKNOWN

    def to_json_obj(self) -> dict[str, str]:
        return {
            "BuildTime": self.build_time,
            "BuildTool": self.build_tool,
            "BuildToolVersion": self.build_tool_version,
            "OperatingSystem": self.operating_system,
            "KernelVersion": self.kernel_version,
        }


def rfc3339(when: _dt.datetime) -> str:
    """chrono's ``to_rfc3339`` shape: ``2026-11-28T00:00:00.123456+00:00``."""
    if when.tzinfo is None:
        raise ValueError("BuildTime must be timezone-aware")
    return when.astimezone(_dt.timezone.utc).isoformat()


def kernel_info_from_config(config_text: str) -> tuple[str, str]:
    """OS and kernel version from the third line of the kernel ``.config`` blob.

    The line looks like ``# Linux/x86_64 4.14.256-209.484.amzn2.x86_64 Kernel Configuration``;
    nitro-cli splits it on space, ``/`` and ``-`` and takes words 1 and 3.
    """
    lines = config_text.splitlines()
    if len(lines) < 3:
        return UNKNOWN, UNKNOWN
    import re

    words = re.split(r"[ /-]", lines[2])
    os_name = words[1] if len(words) > 1 else UNKNOWN
    kver = words[3] if len(words) > 3 else UNKNOWN
    return os_name, kver


def encode_metadata(
    *,
    image_name: str,
    image_version: str,
    build_info: BuildInfo,
    docker_info: Any,
    custom_metadata: Any = None,
) -> bytes:
    """Compact JSON like serde_json::to_vec; DockerInfo keys sorted (serde_json::Value is a BTreeMap)."""
    obj = {
        "ImageName": image_name,
        "ImageVersion": image_version,
        "BuildMetadata": build_info.to_json_obj(),
        "DockerInfo": _sorted(docker_info),
        "CustomMetadata": _sorted(custom_metadata),
    }
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_sorted(v) for v in value]
    return value


def json_depth(data: bytes | str) -> int:
    """Deepest array/object nesting of a JSON text (brackets inside strings ignored)."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, (bytes, bytearray)) else data
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def loads_bounded(data: bytes | str, what: str) -> Any:
    """json.loads, refusing nesting deeper than MAX_JSON_DEPTH with a typed eif/bad-metadata error."""
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise errors.BadMetadata(f"{what} is nested too deeply", expected=f"<= {MAX_JSON_DEPTH}", actual=depth)
    try:
        return json.loads(data)
    except RecursionError:  # defensive: the bound above should make this unreachable
        raise errors.BadMetadata(f"{what} is nested too deeply") from None


def parse_custom_metadata(data: bytes) -> Any:
    if len(data) > MAX_CUSTOM_METADATA_SIZE:
        raise errors.BadMetadata(
            "custom metadata file too large", expected=f"<= {MAX_CUSTOM_METADATA_SIZE}", actual=len(data)
        )
    try:
        return loads_bounded(data, "custom metadata")
    except ValueError as e:
        raise errors.BadMetadata(f"custom metadata is not JSON: {e}") from None


def decode_metadata(data: bytes) -> dict[str, Any]:
    """Parse and validate a metadata section (the fields nitro-cli's serde struct requires)."""
    try:
        obj = loads_bounded(data.decode("utf-8"), "metadata")
    except (UnicodeDecodeError, ValueError) as e:
        raise errors.BadMetadata(f"metadata is not UTF-8 JSON: {e}") from None
    if not isinstance(obj, dict):
        raise errors.BadMetadata("metadata is not a JSON object", actual=type(obj).__name__)
    for key in ("ImageName", "ImageVersion"):
        if not isinstance(obj.get(key), str):
            raise errors.BadMetadata(f"metadata field {key} missing or not a string")
    bm = obj.get("BuildMetadata")
    if not isinstance(bm, dict) or not all(isinstance(bm.get(k), str) for k in _BUILD_KEYS):
        raise errors.BadMetadata("metadata field BuildMetadata incomplete")
    for key in ("DockerInfo", "CustomMetadata"):
        if key not in obj:
            raise errors.BadMetadata(f"metadata field {key} missing")
    return obj
