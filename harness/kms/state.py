"""Persistence for the mocked KMS: what moto keeps only in memory, written to a state directory.

The state directory plays AWS's role: it holds the master keys' material and their policies in
the clear. It must never live inside a Vault's data directory (a copy of the data directory
would then carry the master key, which is exactly what KMS is there to prevent).

``keys.json`` (mode 0600, replaced atomically) holds, per symmetric key: id, ARN, material,
policy string (byte-exact), description, state, creation date, and its aliases. Asymmetric and
HMAC keys are not persisted (the Vault flow uses only symmetric keys); they vanish on restart.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path

from moto.kms.models import Alias, Key, KmsBackend

__all__ = ["StateStore"]

_VERSION = 1


class StateStore:
    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.keys_file = self.dir / "keys.json"
        self.audit_file = self.dir / "audit.jsonl"

    def save(self, backend: KmsBackend) -> None:
        keys = []
        for key in backend.keys.values():
            if key.key_spec != "SYMMETRIC_DEFAULT":
                continue
            keys.append({
                "id": key.id, "arn": key.arn, "material": base64.b64encode(key.key_material).decode(),
                "policy": key.policy, "description": key.description, "key_usage": key.key_usage,
                "key_state": key.key_state, "enabled": key.enabled, "creation_date": key.creation_date,
                "origin": key.origin, "aliases": sorted(key.aliases),
            })
        data = json.dumps({"version": _VERSION, "keys": keys}, indent=1).encode()
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".keys.", suffix=".tmp")  # mkstemp: mode 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.keys_file)
        except BaseException:
            os.unlink(tmp)
            raise

    def restore(self, backend: KmsBackend) -> int:
        """Load saved keys into ``backend``; return how many."""
        if not self.keys_file.exists():
            return 0
        doc = json.loads(self.keys_file.read_text())
        if doc.get("version") != _VERSION:
            raise ValueError(f"{self.keys_file}: unknown state version {doc.get('version')!r}")
        for rec in doc["keys"]:
            key = Key(rec["policy"], rec["key_usage"], "SYMMETRIC_DEFAULT", rec["description"], backend.account_id,
                      backend.region_name, origin=rec["origin"])
            key.id, key.arn = rec["id"], rec["arn"]
            key.key_material = base64.b64decode(rec["material"])
            key.key_state, key.enabled, key.creation_date = rec["key_state"], rec["enabled"], rec["creation_date"]
            key.aliases = {name: Alias(backend.account_id, backend.region_name, name, key) for name in rec["aliases"]}
            backend.keys[key.id] = key
        return len(doc["keys"])

    def append_audit(self, line: str) -> None:
        fd = os.open(self.audit_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(line + "\n")
