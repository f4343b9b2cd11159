"""Validated configuration of the reference Vault; every field has an embedded default."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".vault-data")
    nsm: str = "simulated"  # or "device" (/dev/nsm inside a Nitro enclave)
    nsm_debug: bool = False
    pcrs_file: Path | None = None

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
            "nsm": os.environ.get("VAULT_NSM", cls.nsm),
            "nsm_debug": os.environ.get("VAULT_NSM_DEBUG", "") in ("1", "true", "yes"),
            "pcrs_file": Path(os.environ["VAULT_PCRS_FILE"]) if os.environ.get("VAULT_PCRS_FILE") else None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**values)
        if not 0 < config.port < 65536:
            raise ValueError(f"port {config.port} is out of range")
        if config.nsm not in ("simulated", "device"):
            raise ValueError(f"nsm must be 'simulated' or 'device', not {config.nsm!r}")
        return config

    def load_pcrs(self) -> dict[int, bytes]:
        """PCRs for the simulated NSM: nitro-cli describe-eif JSON ("Measurements") or {"PCR0": hex}."""
        if self.pcrs_file is None:
            return {}
        document = json.loads(self.pcrs_file.read_text())
        table = document.get("Measurements", document)
        pcrs = {}
        for name, value in table.items():
            if name.startswith("PCR") and name[3:].isdigit():
                pcrs[int(name[3:])] = bytes.fromhex(value)
        if not pcrs:
            raise ValueError(f"{self.pcrs_file}: no PCRn entries")
        return pcrs
