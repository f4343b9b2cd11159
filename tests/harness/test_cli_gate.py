"""The harness's gate as CI sees it: exit codes, profiles, and a Vault that implements nothing."""

import sys
import time

import pytest

from harness import cli
from tests.conformance.test_harness_against_reference import DEV_ATTESTATION, run_harness, verdicts
from tests.conftest import ServerProcess, free_port


def test_unreachable_target_exits_3_with_one_line_and_no_traceback(tmp_path):
    started = time.monotonic()
    code, report, output = run_harness(f"http://127.0.0.1:{free_port()}", tmp_path, "--timeout", "2")
    assert code == cli.EXIT_COULD_NOT_RUN, output
    assert time.monotonic() - started < 30
    assert "Traceback" not in output and report == {}
    assert [line for line in output.splitlines() if line.strip()] == [
        next(line for line in output.splitlines() if line.startswith("vault-harness: could not run:"))]


def test_a_target_that_is_not_a_vault_exits_3(tmp_path):
    import http.server
    import threading

    class Html(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>hello</html>")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code, _, output = run_harness(f"http://127.0.0.1:{server.server_port}", tmp_path)
    finally:
        server.shutdown()
    assert code == cli.EXIT_COULD_NOT_RUN and "is not a Vault" in output, output


@pytest.mark.parametrize("argv", [
    ["run", "--target", "http://127.0.0.1:1", "--profile", "no-such-profile"],
    ["run", "--target", "http://127.0.0.1:1", "--select", "no-such/*"],
    ["run"],
])
def test_bad_usage_exits_2(argv, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as exit:  # argparse's own usage errors
        code = exit.code
    assert code == cli.EXIT_USAGE
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.server
def test_a_vault_that_implements_nothing_fails_and_names_the_unimplemented_musts(tmp_path):
    port = free_port()
    server = ServerProcess([sys.executable, "-m", "tests.harness.null_vault", "--port", str(port),
                            "--data-dir", str(tmp_path / "data")], port, tmp_path / "data").start()
    try:
        code, report, output = run_harness(server.url, tmp_path, "--examples", "3", *DEV_ATTESTATION)
        core_code, core_report, core_output = run_harness(server.url, tmp_path, "--profile", "accounts",
                                                          "--select", "service-account/*", "--examples", "3")
    finally:
        server.stop()
    assert code == cli.EXIT_DOES_NOT_CONFORM, output
    got = verdicts(report)
    unimplemented = {k for k, v in got.items() if v == "UNIMPLEMENTED"}
    assert {"e2e/round-trip", "service-account/create"} <= unimplemented, output
    assert "failing the run:" in output and "e2e/round-trip (UNIMPLEMENTED)" in output
    assert "PASSED" not in output
    # Only the accounts profile: core checks are reported as not selected, never as OK.
    assert core_code == cli.EXIT_DOES_NOT_CONFORM, core_output
    core = verdicts(core_report)
    assert core["e2e/round-trip"] == "NOT-SELECTED" and core["service-account/create"] == "UNIMPLEMENTED"
    assert core_report["profiles"] == ["accounts"]


def test_audit_policy_is_a_subcommand_of_vault_harness(tmp_path, capsys):
    policy = tmp_path / "policy.json"
    policy.write_text('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", '
                      '"Action": "kms:*", "Resource": "*"}]}')
    assert cli.main(["audit-policy", str(policy), "--pcr", "0=" + "ab" * 48]) == 1
    assert "principal-wildcard" in capsys.readouterr().out
