"""Validated configuration of the reference Vault; every field has an embedded default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".vault-data")

    @property
    def database(self) -> Path:
        return self.data_dir / "vault.sqlite3"

    @property
    def master_key_file(self) -> Path:
        return self.data_dir / "master.key"

    @classmethod
    def from_env(cls, **overrides) -> "Config":
        values = {
            "host": os.environ.get("VAULT_HOST", cls.host),
            "port": int(os.environ.get("VAULT_PORT", cls.port)),
            "data_dir": Path(os.environ.get("VAULT_DATA_DIR", cls.data_dir)),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**values)
        if not 0 < config.port < 65536:
            raise ValueError(f"port {config.port} is out of range")
        return config
