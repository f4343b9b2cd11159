"""vault-reference's bad usage: one line naming the option, exit 2, before anything starts."""

from __future__ import annotations

import pytest

from reference.cli import main


@pytest.fixture
def bad_pcrs(tmp_path):
    (tmp_path / "not-hex.json").write_text('{"PCR0": "zz"}')
    (tmp_path / "not-json.json").write_text("{")
    return tmp_path


@pytest.mark.parametrize("argv,named", [
    (["serve", "--port", "99999"], "port 99999"),
    (["serve", "--pcrs-file", "{t}/missing.json"], "--pcrs-file"),
    (["serve", "--pcrs-file", "{t}/not-hex.json"], "--pcrs-file"),
    (["serve", "--pcrs-file", "{t}/not-json.json"], "--pcrs-file"),
    (["serve", "--static-key-epoch", "0"], "epoch"),
    (["serve", "--database-url", "mysql://x/y"], "postgresql://"),
    (["enclave", "--listen", "bogus"], "--listen bogus"),
    (["enclave", "--listen", "vsock:cid:5000"], "--listen"),
    (["host", "--enclave", "tcp:1"], "--enclave tcp:1"),
])
def test_bad_usage_is_one_line_and_exit_2(argv, named, bad_pcrs, tmp_path, capsys):
    code = main([part.format(t=bad_pcrs) for part in argv] + (["--data-dir", str(tmp_path / "d")]
                                                              if argv[0] != "host" else []))
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and named in lines[0] and "Traceback" not in captured.err, captured
    assert not (tmp_path / "d").exists()  # nothing started: no data directory made
