"""Bounds on what a request may make the enclave store (docs/spec/07-storage.md 7.7).

``serviceAccount:create`` needs no credential, so without a bound on each record anyone could
grow the database by a megabyte per request. The bounds sit well above what clients use and above
the 64 KiB of metadata 6.6 requires a Vault to accept.
"""

from __future__ import annotations

import json

from .errors import OperationCode, OperationError

MAX_METADATA_ENTRIES = 1024
MAX_METADATA_BYTES = 96 * 1024  # the metadata as compact JSON, UTF-8
MAX_POLICY_COMPONENTS = 64
MAX_POLICIES_BYTES = 64 * 1024


def is_valid_unicode(text: str) -> bool:
    """False for a string holding a lone surrogate (JSON's "\\ud800"): it has no UTF-8 form."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _encoded_size(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def check_metadata(metadata: dict, where: str = "options.metadata") -> dict:
    """``metadata`` itself if it is within the bounds and valid Unicode, else ``invalid_input``."""
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise OperationError(OperationCode.INVALID_INPUT, f"{where} has more than {MAX_METADATA_ENTRIES} entries")
    for key, value in metadata.items():
        if not is_valid_unicode(key) or (isinstance(value, str) and not is_valid_unicode(value)):
            raise OperationError(OperationCode.INVALID_INPUT, f"{where} holds a lone surrogate (not valid Unicode)")
    if _encoded_size(metadata) > MAX_METADATA_BYTES:
        raise OperationError(OperationCode.INVALID_INPUT, f"{where} exceeds {MAX_METADATA_BYTES} bytes as JSON")
    return metadata


def check_policies_size(policies: list, where: str = "options.policies") -> None:
    if len(policies) > MAX_POLICY_COMPONENTS:
        raise OperationError(OperationCode.INVALID_INPUT, f"{where} has more than {MAX_POLICY_COMPONENTS} components")
    try:
        size = _encoded_size(policies)
    except UnicodeEncodeError:
        raise OperationError(OperationCode.INVALID_INPUT, f"{where} holds a lone surrogate (not valid Unicode)") from None
    if size > MAX_POLICIES_BYTES:
        raise OperationError(OperationCode.INVALID_INPUT, f"{where} exceeds {MAX_POLICIES_BYTES} bytes as JSON")
