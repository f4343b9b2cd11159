"""An independent model of service-account state (spec §6), kept by the harness.

The harness never trusts the target's view of itself: every account it creates is recorded here
from the *create* and *rotate* replies alone, and every later answer is compared with the model.
The model knows, for each account, its id, the metadata the harness sent, both timestamps, the
current secrets and every secret rotated away; so it can say which credentials must work, which
must be refused, and which strings must never appear in a reply about some other account.

Nothing here talks to a Vault; ``service_account.py`` drives the target and asks the model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

# Exact member sets of the operations' `data` (spec §6.1, §6.3, §6.4, §6.6).
CREATE_MEMBERS = frozenset({"id", "adminKey", "rotationCode", "createdAt", "updatedAt"})
GET_MEMBERS = frozenset({"id", "metadata", "createdAt", "updatedAt"})
ROTATE_MEMBERS = frozenset({"newAdminKey", "newRotationCode"})

# ISO 8601 extended date-time with seconds, optional fraction and offset (spec §6.6).
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|[+-]\d{2}:?\d{2})?$")


class ModelMismatch(Exception):
    """The target's answer disagrees with the model; ``expected``/``actual`` say how."""

    def __init__(self, message: str, *, expected=None, actual=None):
        super().__init__(message)
        self.message, self.expected, self.actual = message, expected, actual


def parse_timestamp(value) -> datetime | None:
    """The instant an ISO 8601 date-time names, or None when it is not one (no offset: read as UTC)."""
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.match(value)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, offset = match.group(7), match.group(8)
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError:  # month 13, hour 25...
        return None
    if fraction:
        moment += timedelta(microseconds=int(fraction[:6].ljust(6, "0")))
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            return None
        moment -= sign * timedelta(hours=hours, minutes=minutes)
    return moment


def require_members(data, members: frozenset, what: str) -> dict:
    if not isinstance(data, dict):
        raise ModelMismatch(f"{what}: data is not an object", expected=sorted(members), actual=data)
    if set(data) != members:
        raise ModelMismatch(f"{what}: data must have exactly these members", expected=sorted(members),
                            actual=sorted(data))
    return data


@dataclass
class ModelAccount:
    id: str
    metadata: dict
    created_at: str
    updated_at: str | None  # None: changed by a rotation, not yet read back
    updated_floor: datetime  # the updatedAt that a later answer may not undercut
    admin_key: str
    rotation_code: str
    dead_admin_keys: list[str] = field(default_factory=list)
    dead_rotation_codes: list[str] = field(default_factory=list)
    rotations: int = 0

    def secrets(self) -> list[str]:
        return [self.admin_key, self.rotation_code, *self.dead_admin_keys, *self.dead_rotation_codes]


class AccountModel:
    """Every account the harness created in one check, and what each must look like."""

    def __init__(self):
        self.accounts: dict[str, ModelAccount] = {}

    # ---- state changes, learned from the replies that make them --------------------------------
    def created(self, metadata: dict, data) -> ModelAccount:
        """Record a create reply (spec §6.1), after checking what the model can check of it."""
        data = require_members(data, CREATE_MEMBERS, "serviceAccount:create")
        for name in ("id", "adminKey", "rotationCode", "createdAt", "updatedAt"):
            if not isinstance(data[name], str) or not data[name]:
                raise ModelMismatch(f"create: {name} must be a non-empty string", expected="string", actual=data[name])
        created = parse_timestamp(data["createdAt"])
        if created is None or parse_timestamp(data["updatedAt"]) is None:
            raise ModelMismatch("create: timestamps must be ISO 8601 date-times", expected="YYYY-MM-DDTHH:MM:SS[.f][Z]",
                                actual=[data["createdAt"], data["updatedAt"]])
        if data["createdAt"] != data["updatedAt"]:
            raise ModelMismatch("create: createdAt and updatedAt must be equal at creation",
                                expected=data["createdAt"], actual=data["updatedAt"])
        if data["id"] in self.accounts:
            raise ModelMismatch("create: a second account got an existing id", expected="a new id", actual=data["id"])
        self._require_fresh([data["adminKey"], data["rotationCode"]], "create")
        account = ModelAccount(data["id"], json.loads(json.dumps(metadata)), data["createdAt"], data["updatedAt"],
                               created, data["adminKey"], data["rotationCode"])
        self.accounts[account.id] = account
        return account

    def rotated(self, account: ModelAccount, data) -> None:
        """Record a rotate reply (spec §6.4): both secrets replaced, updatedAt to be read back."""
        data = require_members(data, ROTATE_MEMBERS, "serviceAccount:rotate")
        for name in ROTATE_MEMBERS:
            if not isinstance(data[name], str) or not data[name]:
                raise ModelMismatch(f"rotate: {name} must be a non-empty string", expected="string", actual=data[name])
        self._require_fresh([data["newAdminKey"], data["newRotationCode"]], "rotate")
        account.dead_admin_keys.append(account.admin_key)
        account.dead_rotation_codes.append(account.rotation_code)
        account.admin_key, account.rotation_code = data["newAdminKey"], data["newRotationCode"]
        account.updated_at = None
        account.rotations += 1

    def _require_fresh(self, new: list[str], what: str) -> None:
        if new[0] == new[1]:
            raise ModelMismatch(f"{what}: the admin key equals the rotation code", expected="two distinct secrets",
                                actual="equal")
        issued = self.all_secrets()
        reused = [secret for secret in new if secret in issued]
        if reused:
            raise ModelMismatch(f"{what}: a secret issued before was issued again", expected="fresh secrets",
                                actual=f"{len(reused)} reused")

    # ---- what the target must answer -----------------------------------------------------------
    def compare_get(self, account: ModelAccount, data, *, later_than_creation: bool = False) -> None:
        """A get reply (spec §6.3) must equal the model exactly; a rotated account's updatedAt is
        learned here, once, and must not go back in time (nor, after a pause, equal createdAt)."""
        data = require_members(data, GET_MEMBERS, "serviceAccount:get")
        if data["id"] != account.id:
            raise ModelMismatch("get describes another account", expected=account.id, actual=data["id"])
        metadata = data["metadata"]
        if not isinstance(metadata, dict) or metadata != account.metadata or not all(
                isinstance(value, str) for value in metadata.values()):
            raise ModelMismatch("metadata differs from what was stored", expected=account.metadata, actual=metadata)
        if data["createdAt"] != account.created_at:
            raise ModelMismatch("createdAt changed", expected=account.created_at, actual=data["createdAt"])
        updated = parse_timestamp(data["updatedAt"])
        if updated is None:
            raise ModelMismatch("updatedAt is not an ISO 8601 date-time", expected="YYYY-MM-DDTHH:MM:SS[.f][Z]",
                                actual=data["updatedAt"])
        if account.updated_at is not None:
            if data["updatedAt"] != account.updated_at:
                raise ModelMismatch("updatedAt changed without a state change", expected=account.updated_at,
                                    actual=data["updatedAt"])
            return
        # First read after a rotation: updatedAt is the rotation's time.
        if updated < account.updated_floor:
            raise ModelMismatch("updatedAt went back in time after a rotation",
                                expected=f">= {account.updated_floor.isoformat()}", actual=data["updatedAt"])
        if later_than_creation and data["updatedAt"] == account.created_at:
            raise ModelMismatch("updatedAt was not changed by a rotation made over a second after creation",
                                expected=f"later than {account.created_at}", actual=data["updatedAt"])
        account.updated_at, account.updated_floor = data["updatedAt"], updated

    def all_secrets(self) -> set[str]:
        return {secret for account in self.accounts.values() for secret in account.secrets()}

    def foreign_strings(self, allowed: ModelAccount | None) -> dict[str, str]:
        """Strings that must not appear in an answer about ``allowed`` (or in an error): every
        secret ever issued, and the ids and metadata markers of every other account."""
        foreign = {secret: "a secret" for secret in self.all_secrets()}
        for account in self.accounts.values():
            if account is allowed:
                continue
            foreign[account.id] = "another account's id"
            for value in account.metadata.values():
                if value.startswith("marker-"):  # unique per account, so any sighting is a leak
                    foreign[value] = "another account's metadata"
        return foreign


def scan_for_leaks(reply, foreign: dict[str, str], what: str) -> None:
    """No string of ``foreign`` may occur anywhere in a decrypted reply (members, values, messages)."""
    text = json.dumps(reply, ensure_ascii=False)
    for needle, kind in foreign.items():
        if needle and needle in text:
            raise ModelMismatch(f"{what}: the reply contains {kind}", expected="no foreign data",
                                actual=f"{kind} ({len(needle)} characters) in the reply")
