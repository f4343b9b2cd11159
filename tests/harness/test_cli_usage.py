"""vault-harness as a user meets it: every bad input is one line and exit 2 (3 for a target that
cannot be checked), checked before anything runs; --version; pipes and odd consoles; the seed;
deadlines, fail-fast and Ctrl-C; the spawned reference and its port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import cli
from tests.conftest import ROOT, free_port

UNREACHABLE = "http://127.0.0.1:1"


def harness(*argv, env=None, timeout=120, **popen):
    """Run the installed CLI in a child process, as a user would; (exit, stdout, stderr)."""
    completed = subprocess.run([sys.executable, "-m", "harness.cli", *argv], capture_output=True, text=True,
                               cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=timeout,
                               **popen)
    return completed.returncode, completed.stdout, completed.stderr


def one_line_and_no_traceback(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("vault-harness: "), stderr
    return lines[0]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00\x01garbage")
    (tmp_path / "no-reason.txt").write_text("e2e/health\n")
    (tmp_path / "unknown-id.txt").write_text("e2e/no-such-check | typo\n")
    (tmp_path / "pcrs-types.json").write_text(json.dumps({"PCR0": 5}))
    (tmp_path / "pcrs-short.json").write_text(json.dumps({"PCR0": "ab"}))
    (tmp_path / "pcrs-list.json").write_text("[1, 2]")
    (tmp_path / "garbage.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    (tmp_path / "a-file").write_text("x")
    return tmp_path


BAD_USAGE = [
    (["run", "--target", UNREACHABLE, "--expected-failures", "{t}/missing.txt"], "--expected-failures"),
    (["run", "--target", UNREACHABLE, "--expected-failures", "{t}/dir"], "is a directory"),
    (["run", "--target", UNREACHABLE, "--expected-failures", "{t}/binary"], "not UTF-8"),
    (["run", "--target", UNREACHABLE, "--expected-failures", "{t}/no-reason.txt"], "has no reason"),
    (["run", "--target", UNREACHABLE, "--expected-failures", "{t}/unknown-id.txt"], "matches no check id"),
    (["run", "--target", UNREACHABLE, "--expected-pcrs", "{t}/pcrs-types.json"], "96 hex digits"),
    (["run", "--target", UNREACHABLE, "--expected-pcrs", "{t}/pcrs-short.json"], "96 hex digits"),
    (["run", "--target", UNREACHABLE, "--expected-pcrs", "{t}/pcrs-list.json"], "--expected-pcrs"),
    (["run", "--target", UNREACHABLE, "--expected-pcrs", "{t}/missing.json"], "cannot be read"),
    (["run", "--target", UNREACHABLE, "--expected-pcrs-from-eif", "{t}/a-file"], "not a valid EIF"),
    (["run", "--target", UNREACHABLE, "--attestation-root", "{t}/garbage.pem"], "garbage.pem"),
    (["run", "--target", UNREACHABLE, "--attestation-root", "{t}/missing.pem"], "missing.pem"),
    (["run", "--target", UNREACHABLE, "--report-dir", "{t}/a-file"], "not a directory"),
    (["run", "--target", UNREACHABLE, "--timeout", "0"], "--timeout"),
    (["run", "--target", UNREACHABLE, "--timeout", "nan"], "--timeout"),
    (["run", "--target", UNREACHABLE, "--examples", "-1"], "--examples"),
    (["run", "--target", UNREACHABLE, "--examples", "x"], "--examples"),
    (["run", "--target", UNREACHABLE, "--deadline", "-5"], "--deadline"),
    (["run", "--target", UNREACHABLE, "--seed", "-1"], "--seed"),
    (["run", "--target", "127.0.0.1:8080"], "not an http(s) URL"),
    (["run", "--target", "http://127.0.0.1:99999"], "--target"),
    (["run", "--target", "ftp://example"], "not an http(s) URL"),
    (["run", "--target", UNREACHABLE, "--profile", "no-such-profile"], "unknown"),
    (["run", "--target", UNREACHABLE, "--profile", ","], "names no profile"),
    (["run", "--target", UNREACHABLE, "--select", "no-such/*"], "is left"),
    (["run", "--target", UNREACHABLE, "--profile", "core", "--exclude", "*"], "is left"),
    (["run", "--target", UNREACHABLE, "--level", "maybe"], "--level"),
    (["run", "--target", UNREACHABLE, "--tag", "no-such-tag"], "--tag"),
    (["run", "--target", UNREACHABLE, "--section", "3."], "--section"),
    (["run", "--target", UNREACHABLE, "--bogus"], "run --help"),
    (["run"], "exactly one of --target"),
    (["run", "--target", UNREACHABLE, "--spawn-reference"], "exactly one of --target"),
    (["run", "--spawn-reference", "--spawn-port", "70000"], "--spawn-port"),
    (["run", "--target", UNREACHABLE, "--quiet", "--verbose"], "not allowed with"),
    (["run", "--target", UNREACHABLE, "--header", "no colon"], "--header"),
    (["run", "--target", UNREACHABLE, "--header", "Bad Name: x"], "--header"),
    (["run", "--target", UNREACHABLE, "--ca-bundle", "{t}/a-file"], "--ca-bundle"),
    (["run", "--target", UNREACHABLE, "--ca-bundle", "{t}/a-file", "--insecure"], "exclude each other"),
    (["run", "--target", UNREACHABLE, "--proxy", "nope"], "--proxy"),
    (["list", "--profile", "nope"], "--profile"),
    (["frobnicate"], "invalid choice"),
]


@pytest.mark.parametrize("argv,named", BAD_USAGE, ids=[" ".join(a[3:] or a) for a, _ in BAD_USAGE])
def test_bad_usage_is_one_line_and_exit_2_before_anything_runs(argv, named, files, capsys):
    code = cli.main([part.format(t=files) for part in argv])
    captured = capsys.readouterr()
    assert code == cli.EXIT_USAGE, captured
    assert named in one_line_and_no_traceback(captured.err)
    assert captured.out == ""  # nothing ran: no header, no check


def test_select_exclude_section_level_and_tag(capsys):
    from harness.suites.registry import all_checks

    def listed(*argv):
        assert cli.main(["list", *argv]) == 0
        return [line.split()[0] for line in capsys.readouterr().out.splitlines()]

    checks = {c.id: c for c in all_checks()}
    in_3_5 = listed("--section", "3.5", "--level", "MUST")
    assert in_3_5 and all(checks[i].section.startswith("3.5") and checks[i].level == "MUST" for i in in_3_5)
    assert set(listed("--section", "3")) >= set(in_3_5)  # a section covers its subsections
    finals = listed("--tag", "final")
    assert finals and all("final" in checks[i].tags for i in finals)
    everything = listed("--profile", "core")
    kept = listed("--profile", "core", "--exclude", "e2e/*")
    assert kept and not [i for i in kept if i.startswith("e2e/")] and set(kept) < set(everything)
    assert listed("--select", "e2e/*", "--exclude", "e2e/health") == [i for i in listed("--select", "e2e/*")
                                                                      if i != "e2e/health"]


def test_version_and_help_show_defaults():
    code, out, _ = harness("--version")
    assert code == 0 and out.startswith("vault-harness ") and "spec " in out
    code, out, _ = harness("run", "--help")
    assert code == 0 and "(default: 10.0)" in out and "--deadline" in out and "--seed" in out


def test_list_into_a_closed_pipe_and_on_an_ascii_console():
    # `vault-harness list | head -1`: the reader goes away; no BrokenPipeError traceback.
    lister = subprocess.Popen([sys.executable, "-m", "harness.cli", "list"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lister.stdout.readline()
    lister.stdout.close()
    assert lister.wait(30) in (0, cli.EXIT_BROKEN_PIPE)
    assert b"Traceback" not in lister.stderr.read()
    lister.stderr.close()
    code, out, err = harness("list", "--select", "e2e/health", env={"PYTHONIOENCODING": "ascii", "LC_ALL": "C"})
    assert code == 0 and "e2e/health" in out and "Traceback" not in err


def test_an_unreachable_target_is_exit_3_in_one_line():
    started = time.monotonic()
    code, out, err = harness("run", "--target", f"http://127.0.0.1:{free_port()}", "--timeout", "2")
    assert code == cli.EXIT_COULD_NOT_RUN and "could not run" in one_line_and_no_traceback(err)
    assert time.monotonic() - started < 30


def test_a_target_that_accepts_but_never_answers_is_exit_3_within_the_timeout():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog; nothing is ever read or answered
        started = time.monotonic()
        code, _, err = harness("run", "--target", f"http://127.0.0.1:{silent.getsockname()[1]}", "--timeout", "1")
    assert code == cli.EXIT_COULD_NOT_RUN and "no answer within --timeout 1 s" in one_line_and_no_traceback(err)
    assert time.monotonic() - started < 20


def test_headers_and_proxy_reach_the_wire(tmp_path):
    """--header goes with every request; --proxy sends them through the proxy (absolute-form URLs)."""
    import http.server
    import threading

    seen: list[tuple[str, str | None]] = []

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("X-Api-Key")))
            body = b'{"status": "ok"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    here = f"http://127.0.0.1:{server.server_port}"
    try:
        code, out, err = harness("run", "--target", here, "--select", "e2e/health", "--header", "X-Api-Key: k1")
        assert code == 0, out + err
        assert ("/health", "k1") in seen
        seen.clear()
        code, out, err = harness("run", "--target", "http://vault.invalid:8080", "--select", "e2e/health",
                                 "--proxy", here)
        assert code == 0, out + err
        assert ("http://vault.invalid:8080/health", None) in seen  # the request went to the proxy
    finally:
        server.shutdown()


def test_spawn_port_in_use_is_refused_not_checked():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        code, _, err = harness("run", "--spawn-reference", "--spawn-port", str(taken.getsockname()[1]))
    assert code == cli.EXIT_COULD_NOT_RUN and "is in use" in one_line_and_no_traceback(err)


# ---- against a live reference ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from tests.conftest import start_reference

    server = start_reference(tmp_path_factory.mktemp("cli") / "data", "--insecure-dev-master-key-file")
    yield server
    server.stop()


def _report(directory: Path) -> dict:
    return json.loads((directory / "report.json").read_text())


@pytest.mark.server
def test_the_seed_is_honoured_and_recorded(reference, tmp_path):
    argv = ["run", "--target", reference.url, "--select", "e2e/round-trip-arbitrary", "--examples", "5"]
    code, out, _ = harness(*argv, "--seed", "12345", "--report-dir", str(tmp_path / "a"))
    assert code == 0 and "seed 12345" in out and _report(tmp_path / "a")["seed"] == 12345
    code, out, _ = harness(*argv, "--report-dir", str(tmp_path / "b"))
    recorded = _report(tmp_path / "b")["seed"]
    assert code == 0 and isinstance(recorded, int) and f"--seed {recorded}" in out  # a random one, printed


@pytest.mark.server
def test_the_same_seed_draws_the_same_examples(reference, tmp_path, monkeypatch):
    """--seed N replays the property checks: the pings a seeded check sends are the same twice."""
    from harness.protocol import client as client_module

    sent: list[list[bytes]] = []
    original = client_module.VaultClient.exchange

    def recording(self, plaintext, *args, **kwargs):
        sent[-1].append(plaintext)
        return original(self, plaintext, *args, **kwargs)

    monkeypatch.setattr(client_module.VaultClient, "exchange", recording)
    for seed in ("7", "7", "8"):
        sent.append([])
        assert cli.main(["run", "--target", reference.url, "--select", "e2e/round-trip-arbitrary", "--examples", "6",
                         "--seed", seed, "--quiet"]) == 0
    assert sent[0] == sent[1] and sent[0] != sent[2] and len(sent[0]) >= 6


@pytest.mark.server
def test_deadline_and_fail_fast_stop_the_run_and_fail_it(reference, tmp_path):
    code, out, _ = harness("run", "--target", reference.url, "--profile", "core", "--deadline", "0.001",
                           "--report-dir", str(tmp_path / "d"))
    document = _report(tmp_path / "d")
    assert code == cli.EXIT_DOES_NOT_CONFORM and "incomplete: the --deadline passed" in out
    assert document["incomplete"] == "the --deadline passed" and document["passed"] is False
    assert "NOT-RUN" in {r["verdict"] for r in document["results"]}

    waivers = tmp_path / "waivers.txt"  # a passing check listed as failing: UNEXPECTED-PASS fails the run
    waivers.write_text("\ufeffe2e/health | pretend it is broken\n")  # with a byte-order mark
    code, out, _ = harness("run", "--target", reference.url, "--profile", "core", "--fail-fast",
                           "--expected-failures", str(waivers), "--report-dir", str(tmp_path / "f"))
    document = _report(tmp_path / "f")
    assert code == cli.EXIT_DOES_NOT_CONFORM and document["incomplete"].startswith("--fail-fast: e2e/health")
    ran = [r for r in document["results"] if r["verdict"] not in ("NOT-RUN", "NOT-SELECTED")]
    assert [r["id"] for r in ran] == ["e2e/health"] and ran[0]["verdict"] == "UNEXPECTED-PASS"


@pytest.mark.server
def test_ctrl_c_writes_the_partial_report_and_exits_130(reference, tmp_path):
    runner_process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "--target", reference.url, "--profile", "core",
         "--examples", "3000", "--select", "e2e/round-trip-arbitrary", "--select", "e2e/health",
         "--report-dir", str(tmp_path)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    for line in runner_process.stdout:  # e2e/health runs first; interrupt the long property check
        if "e2e/health" in line or time.monotonic() > deadline:
            break
    time.sleep(0.5)
    runner_process.send_signal(signal.SIGINT)
    out, err = runner_process.communicate(timeout=60)
    assert runner_process.returncode == cli.EXIT_INTERRUPTED, (out, err)
    assert "Traceback" not in err and "incomplete: interrupted (Ctrl-C)" in out
    document = _report(tmp_path)
    verdicts = {r["id"]: r["verdict"] for r in document["results"]}
    assert document["incomplete"] == "interrupted (Ctrl-C)" and document["passed"] is False
    # Interrupted mid-check the check is NOT-RUN; if Python swallowed the interrupt (inside a GC
    # callback) the check finishes, and the run still stops and says so.
    assert verdicts["e2e/health"] == "OK" and verdicts["e2e/round-trip-arbitrary"] in ("NOT-RUN", "OK")


@pytest.mark.server
def test_waiver_globs_reasons_and_message_pins(reference, tmp_path):
    waivers = tmp_path / "waivers.txt"
    waivers.write_text("# every health check, with a reason\n"
                       "e2e/heal* | pretend | a message this check never gives\n"
                       "service-account/* | never selected here\n")
    code, out, _ = harness("run", "--target", reference.url, "--select", "e2e/health", "--expected-failures",
                           str(waivers), "--report-dir", str(tmp_path / "r"))
    document = _report(tmp_path / "r")
    health = next(r for r in document["results"] if r["id"] == "e2e/health")
    assert code == cli.EXIT_DOES_NOT_CONFORM and health["verdict"] == "UNEXPECTED-PASS" and "pretend" in health["message"]
    assert document["unusedWaivers"] == ["service-account/*"] and "unused waiver: service-account/*" in out


@pytest.mark.server
def test_a_development_vault_without_the_dev_root_gets_a_hint(reference):
    code, out, _ = harness("run", "--target", reference.url, "--profile", "attestation")
    assert code == cli.EXIT_DOES_NOT_CONFORM
    assert "hint: " in out and "--attestation-root-from-target" in out


@pytest.mark.server
def test_spawn_reference_checks_the_reference_and_passes(tmp_path):
    code, out, err = harness("run", "--spawn-reference", "--profile", "core,attestation", "--examples", "3",
                             "--report-dir", str(tmp_path), timeout=300)
    assert code == 0, out[-3000:] + err[-2000:]
    assert "PASSED" in out and _report(tmp_path)["passed"] is True
