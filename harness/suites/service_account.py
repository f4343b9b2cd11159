"""Service accounts (spec §6)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ._util import expect_encrypted_error, expect_success, is_iso8601, is_uuid, require
from .registry import Context, Level, check


def _create(ctx: Context, metadata: dict) -> dict:
    data = expect_success(ctx.client.call("serviceAccount:create", options={"metadata": metadata}), "serviceAccount:create")
    return data


@check("service-account/create", section="6.1", level=Level.MUST,
       requirement="serviceAccount:create MUST return {id (UUID), adminKey, rotationCode, createdAt, updatedAt (ISO 8601)}; "
                   "secrets MUST differ between accounts.")
def create(ctx: Context):
    first, second = _create(ctx, {"suite": "create"}), _create(ctx, {"suite": "create"})
    for data in (first, second):
        require(is_uuid(data.get("id")), "id is not a UUID", expected="UUID", actual=data.get("id"))
        for name in ("adminKey", "rotationCode"):
            require(isinstance(data.get(name), str) and len(data[name]) >= 32, f"{name} missing or short",
                    expected="a string of 32+ characters", actual=data.get(name))
        for name in ("createdAt", "updatedAt"):
            require(is_iso8601(data.get(name)), f"{name} is not ISO 8601", expected="ISO 8601", actual=data.get(name))
        require(data["adminKey"] != data["rotationCode"], "adminKey equals rotationCode")
    for name in ("id", "adminKey", "rotationCode"):
        require(first[name] != second[name], f"two accounts share {name}", expected="distinct", actual=first[name])


@check("service-account/get", section="6.3", level=Level.MUST,
       requirement="serviceAccount:get with the admin key MUST return the account's id, metadata and timestamps.")
def get(ctx: Context):
    metadata = {"suite": "get", "unicode": "ünïcødé ✓"}
    account = _create(ctx, metadata)
    data = expect_success(ctx.client.call("serviceAccount:get", auth={"adminKey": account["adminKey"]}), "serviceAccount:get")
    require(data.get("id") == account["id"], "wrong id", expected=account["id"], actual=data.get("id"))
    require(data.get("metadata") == metadata, "metadata differs", expected=metadata, actual=data.get("metadata"))
    require(data.get("createdAt") == account["createdAt"], "createdAt differs", expected=account["createdAt"], actual=data.get("createdAt"))
    require("adminKey" not in data and "rotationCode" not in data, "get reveals a secret", expected="no secrets", actual=sorted(data))


@check("service-account/bad-credentials", section="6.2", level=Level.MUST,
       requirement="A wrong admin key, a missing auth or a rotation code used as admin key MUST be refused "
                   "with an encrypted error.")
def bad_credentials(ctx: Context):
    account = _create(ctx, {"suite": "bad-credentials"})
    for what, auth in [
        ("wrong admin key", {"adminKey": account["adminKey"][:-1] + ("0" if account["adminKey"][-1] != "0" else "1")}),
        ("empty admin key", {"adminKey": ""}),
        ("admin key of wrong type", {"adminKey": 42}),
        ("no auth", None),
        ("rotation code as auth", {"rotationCode": account["rotationCode"]}),
    ]:
        expect_encrypted_error(ctx.client.call("serviceAccount:get", auth=auth), what)


@check("service-account/admin-key-code", section="6.2", level=Level.SHOULD,
       requirement="A wrong admin key SHOULD be refused with code auth_invalid_admin_key.")
def admin_key_code(ctx: Context):
    exchange = ctx.client.call("serviceAccount:get", auth={"adminKey": "sa_adm_" + "0" * 64})
    expect_encrypted_error(exchange, "unknown admin key", code="auth_invalid_admin_key")


@check("service-account/rotate", section="6.4", level=Level.MUST,
       requirement="serviceAccount:rotate MUST return new credentials that work, and MUST kill the old admin key and "
                   "the old rotation code; the account keeps its id.")
def rotate(ctx: Context):
    account = _create(ctx, {"suite": "rotate"})
    rotated = expect_success(ctx.client.call("serviceAccount:rotate", auth={"rotationCode": account["rotationCode"]}),
                             "serviceAccount:rotate")
    new_key, new_code = rotated.get("newAdminKey"), rotated.get("newRotationCode")
    require(isinstance(new_key, str) and isinstance(new_code, str), "rotation did not return new credentials",
            expected="newAdminKey, newRotationCode", actual=sorted(rotated))
    require(new_key != account["adminKey"] and new_code != account["rotationCode"], "rotation returned the old secrets")
    data = expect_success(ctx.client.call("serviceAccount:get", auth={"adminKey": new_key}), "get with the new admin key")
    require(data.get("id") == account["id"], "rotation changed the account id", expected=account["id"], actual=data.get("id"))
    expect_encrypted_error(ctx.client.call("serviceAccount:get", auth={"adminKey": account["adminKey"]}), "old admin key after rotation")
    expect_encrypted_error(ctx.client.call("serviceAccount:rotate", auth={"rotationCode": account["rotationCode"]}),
                           "old rotation code after rotation")
    again = expect_success(ctx.client.call("serviceAccount:rotate", auth={"rotationCode": new_code}), "second rotation")
    expect_encrypted_error(ctx.client.call("serviceAccount:get", auth={"adminKey": new_key}), "first new key after second rotation")
    expect_success(ctx.client.call("serviceAccount:get", auth={"adminKey": again["newAdminKey"]}), "get after second rotation")


@check("service-account/rotate-atomic", section="6.4", level=Level.MUST,
       requirement="Concurrent rotations with one rotation code MUST succeed at most once; exactly one new admin key works.")
def rotate_atomic(ctx: Context):
    account = _create(ctx, {"suite": "rotate-atomic"})
    attempts = ctx.options.get("concurrency", 8)
    with ThreadPoolExecutor(attempts) as pool:
        exchanges = list(pool.map(
            lambda _: ctx.client.call("serviceAccount:rotate", auth={"rotationCode": account["rotationCode"]}),
            range(attempts)))
    winners = [e.data for e in exchanges if e.ok]
    require(len(winners) == 1, "a single rotation code rotated more than once (or never)",
            expected=1, actual=len(winners))
    working = [e.data["newAdminKey"] for e in exchanges if e.ok
               if ctx.client.call("serviceAccount:get", auth={"adminKey": e.data["newAdminKey"]}).ok]
    require(len(working) == 1, "exactly one new admin key must work", expected=1, actual=len(working))
