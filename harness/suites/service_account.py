"""Service accounts (spec §6): create, authenticate, get, rotate.

The first checks are the basic ones; those after the "State against an independent model" line
compare every answer with an AccountModel (account_model.py) and run a credential x operation
matrix, so that any defect a client can observe in account state or authentication fails a run.
"""

from __future__ import annotations

import functools
import secrets
import string
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from hypothesis import given
from hypothesis import example as hypothesis_example
from hypothesis import strategies as st

from ._util import expect_encrypted_error, expect_success, is_iso8601, is_uuid, property_check, require
from .account_model import (
    GET_MEMBERS, AccountModel, ModelAccount, ModelMismatch, parse_timestamp, require_members, scan_for_leaks,
)
from .registry import CheckFailed, Context, Level, check


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


# ==== State against an independent model (spec §6.6) =============================================
#
# The checks below drive the target through a _Session: every reply is scanned for data that must
# not be in it (secrets, other accounts' ids and metadata) and every state change is mirrored in
# an AccountModel built from the create and rotate replies alone. After each change the full
# observable state of the changed account, and of one left untouched, is compared with the model.

GET, ROTATE, CREATE = "serviceAccount:get", "serviceAccount:rotate", "serviceAccount:create"
ROTATION_PAUSE = 1.1  # seconds; a rotation this long after creation must move updatedAt (§6.6)


def _modelled(func):
    """Report a disagreement with the model as the check's failure."""
    @functools.wraps(func)
    def run(ctx: Context):
        try:
            return func(ctx)
        except ModelMismatch as mismatch:
            raise CheckFailed(mismatch.message, expected=mismatch.expected, actual=mismatch.actual) from None
    return run


def _marked(metadata: dict) -> dict:
    """The metadata plus a marker unique to this account, so that any sighting elsewhere is a leak."""
    return {**metadata, "marker": f"marker-{uuid.uuid4().hex}"}


class _Session:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.model = AccountModel()

    def call(self, operation: str, what: str, *, auth=None, options=None, principal: ModelAccount | None = None,
             refusal: bool = False):
        """One call; its reply must hold nothing foreign to ``principal`` (spec §6.6). With
        ``refusal``, an acceptance is reported as such before the reply is scanned."""
        exchange = self.ctx.client.call(operation, auth=auth, options=options)
        if refusal and exchange.ok:
            raise CheckFailed(f"{what}: the Vault accepted it", expected="an encrypted error", actual="success: true")
        foreign = self.model.foreign_strings(principal)
        scan_for_leaks(exchange.reply if exchange.reply is not None else exchange.unencrypted_error, foreign, what)
        return exchange

    def create(self, metadata: dict | None, what: str = "create") -> ModelAccount:
        options = None if metadata is None else {"metadata": metadata}
        data = expect_success(self.call(CREATE, what, options=options), what)
        return self.model.created(metadata or {}, data)

    def rotate(self, account: ModelAccount, what: str = "rotate") -> None:
        exchange = self.call(ROTATE, what, auth={"rotationCode": account.rotation_code}, principal=account)
        self.model.rotated(account, expect_success(exchange, what))

    def get(self, account: ModelAccount, admin_key: str, what: str, *, later_than_creation: bool = False) -> None:
        exchange = self.call(GET, what, auth={"adminKey": admin_key}, principal=account)
        self.model.compare_get(account, expect_success(exchange, what), later_than_creation=later_than_creation)

    def refused(self, operation: str, auth, what: str, *, code: str | None = None) -> str:
        return expect_encrypted_error(self.call(operation, what, auth=auth, refusal=True), what, code=code)

    def verify(self, account: ModelAccount, *, later_than_creation: bool = False) -> None:
        """The account's whole observable state: what get shows, twice, and which secrets work."""
        self.get(account, account.admin_key, f"get {account.id} with its current admin key",
                 later_than_creation=later_than_creation)
        self.get(account, account.admin_key, f"get {account.id} again")
        self.refused(GET, {"adminKey": account.rotation_code}, "get with the current rotation code as adminKey")
        for number, dead in enumerate(account.dead_admin_keys):
            self.refused(GET, {"adminKey": dead}, f"get with admin key #{number} rotated away")
        for number, dead in enumerate(account.dead_rotation_codes):
            self.refused(ROTATE, {"rotationCode": dead}, f"rotate with rotation code #{number} rotated away")

    def verify_all(self, **kwargs) -> None:
        for account in self.model.accounts.values():
            self.verify(account, **kwargs)


@check("service-account/reply-members", section="6.6", level=Level.MUST,
       requirement="The data of serviceAccount:create, get and rotate MUST have exactly the members of their tables: "
                   "{id, adminKey, rotationCode, createdAt, updatedAt}, {id, metadata, createdAt, updatedAt}, "
                   "{newAdminKey, newRotationCode}.")
@_modelled
def reply_members(ctx: Context):
    session = _Session(ctx)
    account = session.create(_marked({"suite": "reply-members"}))  # AccountModel.created checks the members
    require_members(expect_success(session.call(GET, "get", auth={"adminKey": account.admin_key}, principal=account),
                                   "get"), GET_MEMBERS, "serviceAccount:get")
    session.rotate(account)  # AccountModel.rotated checks the members
    require_members(expect_success(session.call(GET, "get after rotation", auth={"adminKey": account.admin_key},
                                                principal=account), "get after rotation"), GET_MEMBERS,
                    "serviceAccount:get after rotation")


@check("service-account/state-after-create", section="6.3", level=Level.MUST,
       requirement="After serviceAccount:create, get with the admin key MUST show exactly the id, metadata and timestamps "
                   "the create answer and request gave, for each of two accounts, and MUST keep showing them.")
@_modelled
def state_after_create(ctx: Context):
    session = _Session(ctx)
    first = session.create(_marked({"suite": "state-after-create", "name": "first"}))
    session.verify(first)
    second = session.create(_marked({"suite": "state-after-create", "name": "second", "ünï": "cødé ✓"}))
    session.verify_all()  # the first account must not be touched by the second's creation
    require(first.id != second.id, "two accounts share an id", expected="distinct", actual=first.id)


@check("service-account/state-after-rotate", section="6.4", level=Level.MUST,
       requirement="A rotation MUST keep id, metadata and createdAt, move updatedAt, make only the new secrets work, "
                   "and leave every other account exactly as it was; a rotation with another account's code rotates "
                   "that account only.")
@_modelled
def state_after_rotate(ctx: Context):
    session = _Session(ctx)
    changed = session.create(_marked({"suite": "state-after-rotate", "role": "changed", "𝄞": "e\u0301"}))
    untouched = session.create(_marked({"suite": "state-after-rotate", "role": "untouched"}))
    session.verify_all()
    time.sleep(ROTATION_PAUSE)
    session.rotate(changed, "first rotation")
    session.verify(changed, later_than_creation=True)
    session.verify(untouched)
    session.rotate(changed, "second rotation")
    session.verify_all()
    # The untouched account's own code rotates it, and only it.
    session.rotate(untouched, "rotation of the other account")
    session.verify(untouched, later_than_creation=True)
    session.verify(changed)


@check("service-account/timestamps", section="6.6", level=Level.MUST,
       requirement="createdAt and updatedAt MUST be ISO 8601 date-times, equal at creation; createdAt MUST never change; "
                   "updatedAt MUST change only on rotation, never go back, and be later than createdAt after a "
                   "rotation made over a second after creation.")
@_modelled
def timestamps(ctx: Context):
    session = _Session(ctx)
    account = session.create(_marked({"suite": "timestamps"}))
    session.verify(account)
    time.sleep(ROTATION_PAUSE)
    for round_ in range(3):
        session.rotate(account, f"rotation {round_}")
        session.verify(account, later_than_creation=True)
    require(parse_timestamp(account.updated_at) > parse_timestamp(account.created_at),
            "updatedAt is not later than createdAt after rotations", expected=f"> {account.created_at}",
            actual=account.updated_at)


@check("service-account/timestamp-utc", section="6.6", level=Level.SHOULD,
       requirement="createdAt and updatedAt SHOULD be UTC, written with the suffix Z as JavaScript's toISOString does.")
@_modelled
def timestamp_utc(ctx: Context):
    session = _Session(ctx)
    account = session.create(_marked({"suite": "timestamp-utc"}))
    session.rotate(account)
    session.verify(account)
    for name, value in (("createdAt", account.created_at), ("updatedAt", account.updated_at)):
        require(value.endswith("Z"), f"{name} is not written in UTC with Z", expected="...Z", actual=value)


def _variants(secret: str) -> list[tuple[str, object]]:
    """Strings and values near a real secret that are not it: each must be refused like a stranger."""
    near = [("with a trailing newline", secret + "\n"), ("with a leading space", " " + secret),
            ("one character short", secret[:-1]), ("one character longer", secret + "0"),
            ("with a NUL appended", secret + "\u0000")]
    if secret.upper() != secret:
        near.append(("in upper case", secret.upper()))
    if secret.lower() != secret:
        near.append(("in lower case", secret.lower()))
    return near + [("empty", ""), ("null", None), ("a number", 42), ("true", True), ("in a list", [secret]),
                   ("in an object", {"value": secret})]


def _matrix(a: ModelAccount) -> list[tuple[str, str, object, str | None]]:
    """(what, operation, auth, recommended code) for every credential that MUST be refused (§6.2, §6.4).

    ``a`` has been rotated once, so it has a rotated-away admin key and rotation code."""
    key, code = a.admin_key, a.rotation_code
    old_key, old_code = a.dead_admin_keys[-1], a.dead_rotation_codes[-1]
    rows = [
        ("get: the rotation code as adminKey", GET, {"adminKey": code}, "auth_invalid_admin_key"),
        ("get: the rotated-away admin key", GET, {"adminKey": old_key}, "auth_invalid_admin_key"),
        ("get: the rotated-away rotation code as adminKey", GET, {"adminKey": old_code}, "auth_invalid_admin_key"),
        ("get: the rotation code in rotationCode", GET, {"rotationCode": code}, "auth_unsupported_method"),
        ("get: the admin key in rotationCode", GET, {"rotationCode": key}, "auth_unsupported_method"),
        ("get: the admin key as accessToken", GET, {"accessToken": key}, "auth_invalid_access_token"),
        ("get: the rotation code as accessToken", GET, {"accessToken": code}, "auth_invalid_access_token"),
        ("get: an empty accessToken", GET, {"accessToken": ""}, "auth_invalid_access_token"),
        ("get: the admin key as sessionToken", GET, {"sessionToken": key}, None),
        ("get: an empty sessionToken", GET, {"sessionToken": ""}, None),
        ("get: no auth", GET, None, "auth_missing"),
        ("get: empty auth", GET, {}, "auth_missing"),
        ("get: the admin key under an unknown member", GET, {"apiKey": key}, "auth_missing"),
        ("get: the admin key under 'AdminKey'", GET, {"AdminKey": key}, "auth_missing"),
        ("get: auth is the admin key itself", GET, key, "serialization_error"),
        ("get: auth is a list", GET, [key], "serialization_error"),
        ("rotate: the admin key as rotationCode", ROTATE, {"rotationCode": key}, "auth_invalid_rotation_code"),
        ("rotate: the admin key in adminKey", ROTATE, {"adminKey": key}, "auth_invalid_rotation_code"),
        ("rotate: the rotation code in adminKey", ROTATE, {"adminKey": code}, "auth_invalid_rotation_code"),
        ("rotate: the rotation code as accessToken", ROTATE, {"accessToken": code}, "auth_invalid_rotation_code"),
        ("rotate: the rotation code as sessionToken", ROTATE, {"sessionToken": code}, "auth_invalid_rotation_code"),
        ("rotate: the rotated-away rotation code", ROTATE, {"rotationCode": old_code}, "auth_invalid_rotation_code"),
        ("rotate: the rotated-away admin key as rotationCode", ROTATE, {"rotationCode": old_key},
         "auth_invalid_rotation_code"),
        ("rotate: no auth", ROTATE, None, "auth_invalid_rotation_code"),
        ("rotate: empty auth", ROTATE, {}, "auth_invalid_rotation_code"),
        ("rotate: auth is the rotation code itself", ROTATE, code, "serialization_error"),
    ]
    rows += [(f"get: adminKey {how}", GET, {"adminKey": value}, "auth_invalid_admin_key")
             for how, value in _variants(key)]
    rows += [(f"rotate: rotationCode {how}", ROTATE, {"rotationCode": value}, "auth_invalid_rotation_code")
             for how, value in _variants(code)]
    return rows


def _other_account_rows(a: ModelAccount, b: ModelAccount) -> list[tuple[str, str, object, str | None]]:
    """Another account's secrets in the wrong slot are refused like any stranger (§6.2, §6.4)."""
    return [
        ("get: another account's rotation code as adminKey", GET, {"adminKey": b.rotation_code}, "auth_invalid_admin_key"),
        ("rotate: another account's admin key as rotationCode", ROTATE, {"rotationCode": b.admin_key},
         "auth_invalid_rotation_code"),
        ("rotate: another account's admin key in adminKey", ROTATE, {"adminKey": b.admin_key},
         "auth_invalid_rotation_code"),
    ]


def _run_matrix(ctx: Context, *, with_codes: bool) -> None:
    session = _Session(ctx)
    a = session.create(_marked({"suite": "credential-matrix", "role": "a"}))
    b = session.create(_marked({"suite": "credential-matrix", "role": "b"}))
    session.rotate(a, "rotation that gives the account rotated-away secrets")
    session.verify_all()
    for what, operation, auth, code in _matrix(a) + _other_account_rows(a, b):
        session.refused(operation, auth, what, code=code if with_codes else None)
    # Several members (MAY be refused): if accepted, the answer is that of the one valid credential.
    for what, auth in (("b's admin key beside a's rotation code", {"adminKey": b.admin_key, "rotationCode": a.rotation_code}),
                       ("b's admin key beside a's admin key as accessToken", {"adminKey": b.admin_key,
                                                                              "accessToken": a.admin_key})):
        exchange = session.call(GET, f"get with {what}", auth=auth, principal=b)
        if exchange.ok:
            session.model.compare_get(b, exchange.data)
        else:
            expect_encrypted_error(exchange, f"get with {what}")
    # Allowed: each account's own admin key, and another account's key shows that account only.
    session.get(a, a.admin_key, "get with the admin key")
    session.get(b, b.admin_key, "get with another account's admin key")
    # No refused request changed anything (spec §4.4): same state, and the current code still rotates.
    session.verify_all()
    session.rotate(a, "rotation with the current code after the refused attempts")
    session.verify_all()


@check("service-account/credential-matrix", section="6.2", level=Level.MUST,
       requirement="Every credential other than the account's current admin key (for get) or current rotation code "
                   "(for rotate) MUST be refused with an encrypted error: rotated-away secrets, a secret in the wrong "
                   "auth slot (adminKey, rotationCode, accessToken, sessionToken), near misses, empty strings, "
                   "other types, missing auth; refused requests change nothing; another account's key shows only it.")
@_modelled
def credential_matrix(ctx: Context):
    _run_matrix(ctx, with_codes=False)


@check("service-account/credential-codes", section="6.2", level=Level.SHOULD,
       requirement="Each refused credential SHOULD get the code 6.2/6.4 name: auth_missing, auth_invalid_admin_key, "
                   "auth_invalid_rotation_code, auth_invalid_access_token, auth_unsupported_method, serialization_error.")
@_modelled
def credential_codes(ctx: Context):
    _run_matrix(ctx, with_codes=True)


def _stranger(secret: str) -> str:
    """A string of the same shape as ``secret`` that no account has: the part after the last ``_``
    (all of it, if none) gets new characters of the same classes."""
    head, tail = secret[:secret.rfind("_") + 1], secret[secret.rfind("_") + 1:]
    classes = ("0123456789abcdef", string.digits, string.ascii_lowercase, string.ascii_uppercase)
    candidate = head + "".join(secrets.choice(next((c for c in classes if char in c), char)) for char in tail)
    return candidate if candidate != secret else secret + "0"


def _error_of(session: _Session, operation: str, auth, what: str) -> dict:
    exchange = session.call(operation, what, auth=auth, refusal=True)
    expect_encrypted_error(exchange, what)
    return exchange.reply["error"]


@check("service-account/refusal-indistinguishable", section="6.2", level=Level.MUST,
       requirement="A refused admin key (or rotation code) MUST get the same answer whether it never existed, was "
                   "rotated away, is a secret of the other kind, or is malformed.")
@_modelled
def refusal_indistinguishable(ctx: Context):
    session = _Session(ctx)
    account = session.create(_marked({"suite": "refusal-indistinguishable"}))
    session.rotate(account)
    for operation, slot, current, old, other in (
            (GET, "adminKey", account.admin_key, account.dead_admin_keys[0], account.rotation_code),
            (ROTATE, "rotationCode", account.rotation_code, account.dead_rotation_codes[0], account.admin_key)):
        cases = [("never existed", _stranger(current)), ("rotated away", old), ("a secret of the other kind", other),
                 ("malformed: a number", 42), ("malformed: empty", ""), ("malformed: short", "x")]
        answers = {what: _error_of(session, operation, {slot: value}, f"{operation} with a {slot} that {what}")
                   for what, value in cases}
        reference_what, reference_answer = cases[0][0], answers[cases[0][0]]
        for what, answer in answers.items():
            require(answer == reference_answer, f"{operation}: the answer for a {slot} that is {what} differs from "
                    f"one that {reference_what}", expected=reference_answer, actual=answer)
    session.verify_all()


@check("service-account/no-leak", section="6.6", level=Level.MUST,
       requirement="No answer may contain another account's id or metadata, nor any admin key or rotation code except "
                   "in the create or rotate reply that issues it, not even one the request itself carried.")
@_modelled
def no_leak(ctx: Context):
    session = _Session(ctx)
    accounts = [session.create(_marked({"suite": "no-leak", "n": str(n)})) for n in range(3)]
    for round_ in range(2):
        for account in accounts:
            session.verify(account)  # every get and refusal is scanned by the session
            # Secrets of this account in the wrong places: the error must not echo them.
            for operation, auth in ((GET, {"rotationCode": account.rotation_code}),
                                    (GET, {"accessToken": account.admin_key}),
                                    (ROTATE, {"adminKey": account.admin_key}),
                                    (ROTATE, {"rotationCode": account.admin_key})):
                session.refused(operation, auth, f"{operation} with a secret in the wrong slot")
        session.rotate(accounts[round_], f"rotation in round {round_}")


_HUGE = "x" * 65536
_METADATA_EXAMPLES = [
    {},
    {"": ""},
    {"\u00e9": "precomposed", "e\u0301": "combining"},  # equal after NFC: both must survive
    {"z\u0308\u0301\u0327\u0334": "a\u0300\u0301\u0302\u0303\u0304\u0305"},  # stacked combining marks
    {"𝄞": "😀👩‍👩‍👧‍👦", "\U0010ffff": "\U0001f600\U000e0001"},  # astral planes, ZWJ, the last code point
    {"nul": "a\u0000b", "\u0000": "\u0000"},
    {"controls": "\t\n\r\x7f\x1b\x08", "bidi": "\u202e\u2066\u200f", "bom": "\ufeff", "nonchars": "\ufffe\uffff"},
    {"__proto__": "p", "constructor": "c", "toString": "t", "hasOwnProperty": "h", "prototype": "q"},
    {"space ": " ", " ": "  ", "A": "1", "a": "2"},  # no trimming, no case folding
    {"json": '{"nested": {"a": "b"}}', "quotes": "\"'\\/"},
    {"long": _HUGE},  # 64 KiB, the minimum 6.6 requires
    {"astral-long": "𝄞" * 4096},
    {f"key-{n}": str(n) for n in range(500)},
]


def _with_examples(test):
    for example in reversed(_METADATA_EXAMPLES):
        test = hypothesis_example(example)(test)
    return test


@check("service-account/metadata-roundtrip", section="6.3", level=Level.MUST,
       requirement="Metadata MUST be stored exactly as given (any Unicode, empty and long strings, any key) and get "
                   "MUST return it exactly, before and after a rotation.")
@_modelled
def metadata_roundtrip(ctx: Context):
    session = _Session(ctx)

    @property_check(ctx, 20)
    @given(st.dictionaries(st.text(max_size=24), st.text(max_size=60), max_size=6))
    @_with_examples
    def prop(metadata):
        account = session.create(metadata, "create with this metadata")
        session.get(account, account.admin_key, "get after create")
        session.rotate(account)
        session.get(account, account.admin_key, "get after rotation")

    prop()


@check("service-account/metadata-default", section="6.1", level=Level.MUST,
       requirement="serviceAccount:create without metadata (no options, or options without metadata) MUST store {}.")
@_modelled
def metadata_default(ctx: Context):
    session = _Session(ctx)
    for what, options in (("no options", None), ("options {}", {})):
        data = expect_success(session.call(CREATE, f"create with {what}", options=options), f"create with {what}")
        account = session.model.created({}, data)
        session.verify(account)


_INVALID_METADATA = [
    ("a list", []), ("a string", "name"), ("a number", 1), ("true", True),
    ("a number value", {"a": 1}), ("a float value", {"a": 1.5}), ("a boolean value", {"a": False}),
    ("a null value", {"a": None}), ("a nested object", {"a": {"b": "c"}}), ("a list value", {"a": ["b"]}),
    ("one bad value among good ones", {"a": "ok", "b": "ok", "c": 3}),
]


def _metadata_refusals(ctx: Context, *, code: str | None) -> None:
    session = _Session(ctx)
    # A Vault without serviceAccount:create refuses everything: that is UNIMPLEMENTED, not a pass.
    session.create(_marked({"suite": "metadata-invalid"}), "create with valid metadata")
    for what, metadata in _INVALID_METADATA:
        exchange = session.call(CREATE, f"create with metadata that is {what}", options={"metadata": metadata})
        require(not exchange.ok, f"create accepted metadata that is {what}", expected="an encrypted error",
                actual=exchange.data)
        expect_encrypted_error(exchange, f"create with metadata that is {what}", code=code)


@check("service-account/metadata-invalid", section="6.1", level=Level.MUST,
       requirement="metadata that is not an object mapping strings to strings (a list, a string, number, boolean, null, "
                   "nested object or list values) MUST be refused with an encrypted error.")
def metadata_invalid(ctx: Context):
    _metadata_refusals(ctx, code=None)


@check("service-account/metadata-invalid-code", section="6.1", level=Level.SHOULD,
       requirement="Refused metadata SHOULD get the code invalid_input.")
def metadata_invalid_code(ctx: Context):
    _metadata_refusals(ctx, code="invalid_input")
