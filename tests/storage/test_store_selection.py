"""Which store the reference opens: SQLite in the data directory unless a PostgreSQL URL is given."""

from __future__ import annotations

import pytest

from reference.cli import build_store, main
from reference.config import Config
from tests.conftest import free_port


def test_default_is_sqlite_in_the_data_directory(tmp_path, monkeypatch):
    from reference.enclave.store import SqliteStore

    monkeypatch.delenv("VAULT_DATABASE_URL", raising=False)
    config = Config.from_env(data_dir=tmp_path)
    store = build_store(config)
    assert isinstance(store, SqliteStore) and config.database.parent == tmp_path and config.database.exists()
    store.close()


def test_a_postgresql_url_from_the_environment_selects_postgresql(postgres_cluster, tmp_path, monkeypatch):
    from reference.enclave.pg_store import PostgresStore

    url = postgres_cluster.create_database()
    monkeypatch.setenv("VAULT_DATABASE_URL", url)
    store = build_store(Config.from_env(data_dir=tmp_path))
    assert isinstance(store, PostgresStore)
    store.put(b"k" * 32, b"v")
    assert store.get(b"k" * 32) == b"v"
    store.close()
    assert not (tmp_path / "vault.sqlite3").exists()


@pytest.mark.parametrize("url", ["mysql://db/vault", "sqlite:///vault.db", "127.0.0.1:5432"])
def test_other_urls_are_refused(url):
    with pytest.raises(ValueError, match="postgresql://"):
        Config.from_env(database_url=url)


def test_an_unreachable_database_stops_the_start_with_one_line(tmp_path, capsys):
    closed_port = free_port()
    code = main(["serve", "--data-dir", str(tmp_path), "--insecure-dev-master-key-file",
                 "--database-url", f"postgresql://postgres@127.0.0.1:{closed_port}/vault"])
    error = capsys.readouterr().err
    assert code == 1
    assert "cannot start" in error and "connect" in error and "Traceback" not in error
