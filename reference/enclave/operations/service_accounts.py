"""Service accounts (spec §6): create, get, rotate.

Bearer secrets (admin key, rotation code) are returned once and stored only as keyed digests;
the account record keeps the current digests, and two index entries map each digest to the
account. Rotation replaces all of it in one transaction (spec §6.4).
"""

from __future__ import annotations

import uuid

from ..auth import (
    ADMIN_KEY_PREFIX,
    ROTATION_CODE_PREFIX,
    account_address,
    account_by_rotation_code,
    authenticate,
    secret_index,
)
from ..errors import OperationCode, OperationError
from ..limits import check_metadata


def _new_secret(ctx, prefix: str) -> str:
    return prefix + ctx.random_bytes(32).hex()


def _validate_metadata(options: dict) -> dict:
    metadata = options.get("metadata", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise OperationError(OperationCode.INVALID_INPUT, "options.metadata must map strings to strings")
    return check_metadata(metadata)


def _install_secrets(ctx, account: dict) -> tuple[str, str]:
    admin_key = _new_secret(ctx, ADMIN_KEY_PREFIX)
    rotation_code = _new_secret(ctx, ROTATION_CODE_PREFIX)
    account["admin-key"] = ctx.keyring.secret_digest("admin-key", admin_key).hex()
    account["rotation-code"] = ctx.keyring.secret_digest("rotation-code", rotation_code).hex()
    link = {"accountId": account["id"]}
    ctx.store.put(secret_index(ctx, "admin-key", account["admin-key"]), link)
    ctx.store.put(secret_index(ctx, "rotation-code", account["rotation-code"]), link)
    return admin_key, rotation_code


def create(ctx, request) -> dict:
    metadata = _validate_metadata(request.options)
    now = ctx.timestamp()
    account = {
        "id": str(uuid.UUID(bytes=ctx.random_bytes(16), version=4)),
        "metadata": metadata,
        "createdAt": now,
        "updatedAt": now,
        "epoch": 0,
    }
    with ctx.store.transaction():
        admin_key, rotation_code = _install_secrets(ctx, account)
        ctx.store.put(account_address(ctx, account["id"]), account)
    return {
        "id": account["id"],
        "adminKey": admin_key,
        "rotationCode": rotation_code,
        "createdAt": account["createdAt"],
        "updatedAt": account["updatedAt"],
    }


def get(ctx, request) -> dict:
    account = authenticate(ctx, request).account
    return {k: account[k] for k in ("id", "metadata", "createdAt", "updatedAt")}


def rotate(ctx, request) -> dict:
    with ctx.store.transaction():
        account = account_by_rotation_code(ctx, request.auth)
        # Kill the old secrets' index entries; the old digests also stop matching the record.
        ctx.store.delete(secret_index(ctx, "admin-key", account["admin-key"]))
        ctx.store.delete(secret_index(ctx, "rotation-code", account["rotation-code"]))
        new_admin_key, new_rotation_code = _install_secrets(ctx, account)
        # Access tokens carry the epoch they were issued in; bumping it revokes them all (§6.4).
        account["epoch"] += 1
        account["updatedAt"] = ctx.timestamp()
        ctx.store.put(account_address(ctx, account["id"]), account)
    return {"newAdminKey": new_admin_key, "newRotationCode": new_rotation_code}
