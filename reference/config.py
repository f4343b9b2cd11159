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
    nsm: str = "simulated"  # or "device" (/dev/nsm inside a Nitro enclave), or "serial:PORT" (spec 9.11)
    nsm_debug: bool = False
    pcrs_file: Path | None = None
    # The master key (spec §11): a KMS key ARN (real KMS), else the embedded mock KMS; a plain
    # file only behind the loudly named development flag.
    kms_key_id: str | None = None
    kms_region: str | None = None
    kms_endpoint: str | None = None
    kms_link: str | None = None  # serial:PORT: KMS through the local launcher's proxy (spec 9.11)
    insecure_dev_master_key_file: bool = False
    static_key_epoch: int = 1
    # The store: PostgreSQL at this URL (several instances may share it), else SQLite in data_dir.
    database_url: str | None = None
    # Mitigations of spec 10.7: a replay window of this many requests (0: off, the default), and
    # the echo of a caller's responseBinding (on by default: only a caller that sends one sees it).
    replay_window: int = 0
    response_binding: bool = True

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
            "kms_key_id": os.environ.get("VAULT_KMS_KEY_ID") or None,
            "kms_region": os.environ.get("VAULT_KMS_REGION") or None,
            "kms_endpoint": os.environ.get("VAULT_KMS_ENDPOINT") or None,
            "insecure_dev_master_key_file":
                os.environ.get("VAULT_INSECURE_DEV_MASTER_KEY_FILE", "") in ("1", "true", "yes"),
            "static_key_epoch": int(os.environ.get("VAULT_STATIC_KEY_EPOCH", cls.static_key_epoch)),
            "database_url": os.environ.get("VAULT_DATABASE_URL") or None,
            "replay_window": int(os.environ.get("VAULT_REPLAY_WINDOW", cls.replay_window)),
            "response_binding": os.environ.get("VAULT_RESPONSE_BINDING", "1") not in ("0", "false", "no"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**values)
        if not 0 < config.port < 65536:
            raise ValueError(f"port {config.port} is out of range")
        if not 1 <= config.static_key_epoch < 2**32:
            raise ValueError(f"static key epoch must be 1..2^32-1, not {config.static_key_epoch}")
        if config.kms_key_id and config.insecure_dev_master_key_file:
            raise ValueError("--kms-key-id and --insecure-dev-master-key-file exclude each other")
        if config.kms_link is not None:
            if not _is_serial(config.kms_link):
                raise ValueError(f"--kms-link must be serial:PORT, not {config.kms_link!r}")
            if config.kms_key_id or config.kms_endpoint or config.insecure_dev_master_key_file:
                raise ValueError("--kms-link takes the launcher's key: --kms-key-id, --kms-endpoint and "
                                 "--insecure-dev-master-key-file do not apply")
        if config.database_url and not config.database_url.startswith(("postgresql://", "postgres://")):
            raise ValueError("the database URL must start with postgresql:// (without it: SQLite in the data directory)")
        if not 0 <= config.replay_window <= 10_000_000:
            raise ValueError(f"--replay-window must be 0 (off) to 10000000 requests, not {config.replay_window}")
        if config.nsm not in ("simulated", "device") and not _is_serial(config.nsm):
            raise ValueError(f"nsm must be 'simulated', 'device' or serial:PORT, not {config.nsm!r}")
        if config.nsm.startswith("serial:") and (config.pcrs_file is not None or config.nsm_debug):
            raise ValueError("--nsm serial:PORT attests the launcher's PCRs: --pcrs-file and --nsm-debug do not apply")
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


def _is_serial(address: str) -> bool:
    """A ``serial:PORT`` address, by the framing's own rule (one rule for --listen, --nsm, --kms-link)."""
    from .framing import parse_address

    try:
        return parse_address(address)[0] == "serial"
    except ValueError:
        return False
