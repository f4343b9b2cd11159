"""Known-answer and attack vectors as data (ARCHITECTURE.md: "vectors are data, not code").

Every ``*.json`` file here is Wycheproof-shaped and names its JSON Schema in its ``schema``
field; the schema lives in ``schema/``. ``load`` validates before it returns, and a missing
file or schema raises :class:`VectorError`: a suite never skips silently. Sources and licences
of every file: ``PROVENANCE.md``.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources

import jsonschema
import referencing
import referencing.jsonschema

__all__ = ["VectorError", "load", "names", "schema_names", "validate"]

# Wycheproof's "HexBytes": an even number of lowercase hex digits.
_HEX_BYTES = re.compile(r"(?:[0-9a-f]{2})*")
_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("HexBytes")
def _is_hex_bytes(value: object) -> bool:
    return not isinstance(value, str) or _HEX_BYTES.fullmatch(value) is not None


class VectorError(Exception):
    """A vector file or its schema is missing, unreadable, or does not match the schema."""


def _root():
    return resources.files(__name__)


def names() -> list[str]:
    """The vector files shipped in this package, e.g. ``["envelope_invalid", ...]``."""
    return sorted(p.name[: -len(".json")] for p in _root().iterdir() if p.name.endswith(".json"))


def schema_names() -> list[str]:
    """The schema files shipped in ``schema/``."""
    return sorted(p.name for p in _root().joinpath("schema").iterdir() if p.name.endswith(".json"))


def _read_json(resource, what: str) -> object:
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise VectorError(f"{what} is missing: {resource.name}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise VectorError(f"{what} {resource.name} is not JSON: {exc}") from None


@functools.lru_cache(maxsize=1)
def _registry() -> referencing.Registry:
    resources_ = []
    for name in schema_names():
        contents = _read_json(_root().joinpath("schema", name), "schema")
        resources_.append(
            (name, referencing.Resource.from_contents(contents, referencing.jsonschema.DRAFT7))
        )
    return referencing.Registry().with_resources(resources_)


def _validator(schema_name: str) -> jsonschema.protocols.Validator:
    if "/" in schema_name or "\\" in schema_name:
        raise VectorError(f"schema name {schema_name!r} must be a bare file name")
    schema = _read_json(_root().joinpath("schema", schema_name), "schema")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema, registry=_registry(), format_checker=_FORMATS)


def validate(data: object, what: str = "vector data") -> None:
    """Raise :class:`VectorError` unless ``data`` matches the schema its ``schema`` field names."""
    if not isinstance(data, dict) or not isinstance(data.get("schema"), str):
        raise VectorError(f"{what} has no 'schema' field")
    errors = sorted(_validator(data["schema"]).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path)
        raise VectorError(
            f"{what} does not match {data['schema']} ({len(errors)} errors; first at /{where}: "
            f"{errors[0].message[:300]})"
        )


@functools.lru_cache(maxsize=None)
def _validated_text(name: str) -> str:
    resource = _root().joinpath(name + ".json")
    validate(_read_json(resource, "vector file"), f"{name}.json")
    return resource.read_text(encoding="utf-8")


def load(name: str) -> dict:
    """Return vector file ``name`` (with or without ``.json``), validated against its schema.

    Each call returns a fresh object, so callers may change it freely.
    """
    if name.endswith(".json"):
        name = name[: -len(".json")]
    if "/" in name or "\\" in name or name.startswith("."):
        raise VectorError(f"vector name {name!r} must be a bare file name")
    return json.loads(_validated_text(name))
