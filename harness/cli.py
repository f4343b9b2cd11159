"""``vault-harness``: check a Vault at any URL against the spec and write reports CI can gate on.

Exit status (run):
  0    the target conforms to every selected profile (with --strict, every SHOULD holds too)
  1    it does not: a MUST FAILED or is UNIMPLEMENTED, a check hit an ERROR, a listed expected
       failure passed (UNEXPECTED-PASS), or the run stopped early (--deadline, --fail-fast)
  2    bad usage: an unknown or invalid option, profile, check id or file (one line on stderr)
  3    the run could not take place: the target is unreachable within --timeout, or is not a Vault
  130  interrupted (Ctrl-C): the partial report is written, marked incomplete
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

from . import report, runner, sibling, waivers
from .protocol.client import VaultClient
from .suites.registry import PROFILES, RESERVED_PROFILES, SPEC_VERSION, Context, Verdict, all_checks

EXIT_CONFORMS, EXIT_DOES_NOT_CONFORM, EXIT_USAGE, EXIT_COULD_NOT_RUN, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell tool reports when its reader goes away (`list | head`)

_COLOURS = {Verdict.OK: "32", Verdict.FAILED: "31", Verdict.ERROR: "31", Verdict.UNEXPECTED_PASS: "31",
            Verdict.NON_STRICT: "33", Verdict.WAIVED: "33", Verdict.INFORMATIONAL: "36", Verdict.UNIMPLEMENTED: "31",
            Verdict.NOT_SELECTED: "90", Verdict.NOT_RUN: "90"}


class UsageError(Exception):
    """Bad usage: printed as one line ``vault-harness: ...`` with exit 2."""


class CouldNotRun(Exception):
    """The run cannot take place (unreachable target, not a Vault): one line, exit 3."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the command, not the usage block."""

    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# ---- option checks: each returns the checked value or raises UsageError naming the option ------------

def _bad(option: str, value, reason: str) -> UsageError:
    return UsageError(f"{option} {value}: {reason}")


def check_target(value: str) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(ch.isspace() for ch in value):
        raise _bad("--target", value, "not an http(s) URL (for example http://127.0.0.1:8080)")
    try:
        parts.port  # noqa: B018  (raises on a port out of range)
    except ValueError as error:
        raise _bad("--target", value, str(error)) from None
    return value.rstrip("/")


def check_positive(option: str, value: float | None, *, maximum: float | None = None) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or value <= 0 or (maximum is not None and value > maximum):
        limit = f" and at most {maximum:g}" if maximum is not None else ""
        raise _bad(option, value, f"must be a number above 0{limit}")
    return value


def check_count(option: str, value: int | None, *, minimum: int = 1, maximum: int = 1_000_000) -> int | None:
    if value is not None and not minimum <= value <= maximum:
        raise _bad(option, value, f"must be a whole number from {minimum} to {maximum}")
    return value


def read_root(path: Path) -> bytes:
    """A root certificate to pin, PEM or DER; refused here (naming the file) if it is neither."""
    from cryptography import x509

    try:
        data = path.read_bytes()
    except OSError as error:
        raise _bad("--attestation-root", path, f"cannot be read ({error.strerror or error})") from None
    try:
        if b"-----BEGIN" in data:
            x509.load_pem_x509_certificate(data)
        else:
            x509.load_der_x509_certificate(data)
    except ValueError:
        raise _bad("--attestation-root", path, "not a PEM or DER X.509 certificate") from None
    return data


def read_pcrs(path: Path) -> dict[int, bytes]:
    """PCRs from nitro-cli describe-eif / vault-eif describe JSON ("Measurements") or {"PCR0": hex, ...}."""
    try:
        document = json.loads(path.read_bytes().decode("utf-8-sig"))
    except OSError as error:
        raise _bad("--expected-pcrs", path, f"cannot be read ({error.strerror or error})") from None
    except (UnicodeDecodeError, ValueError):
        raise _bad("--expected-pcrs", path, "not JSON") from None
    table = document.get("Measurements", document) if isinstance(document, dict) else None
    if not isinstance(table, dict):
        raise _bad("--expected-pcrs", path, 'expected an object like {"PCR0": "<96 hex digits>", ...}')
    pcrs = {}
    for name, value in table.items():
        if not (name.startswith("PCR") and name[3:].isdigit()):
            continue
        index = int(name[3:])
        if index > 31:
            raise _bad("--expected-pcrs", path, f"{name}: a Nitro enclave has PCR0..PCR31")
        if not isinstance(value, str) or len(value) != 96 or any(c not in "0123456789abcdefABCDEF" for c in value):
            raise _bad("--expected-pcrs", path, f"{name}: must be a SHA-384 value, 96 hex digits (got {value!r:.40})")
        pcrs[index] = bytes.fromhex(value)
    if not pcrs:
        raise _bad("--expected-pcrs", path, "no PCRn values found")
    return pcrs


def pcrs_of_eif(path: Path) -> dict[int, bytes]:
    """Measure an EIF here, the way nitro-cli does, instead of trusting anyone's numbers."""
    import importlib

    enclave_build = importlib.import_module(sibling("enclave_build"))
    EifBuildError, inspect_eif = enclave_build.EifBuildError, enclave_build.inspect_eif

    try:
        with path.open("rb") as eif:
            measured = inspect_eif(eif).measurements
    except OSError as error:
        raise _bad("--expected-pcrs-from-eif", path, f"cannot be read ({error.strerror or error})") from None
    except EifBuildError as error:
        raise _bad("--expected-pcrs-from-eif", path, f"not a valid EIF ({error})") from None
    pcrs = {0: measured.pcr0, 1: measured.pcr1, 2: measured.pcr2}
    if measured.pcr8 is not None:
        pcrs[8] = measured.pcr8
    return {index: bytes.fromhex(value) for index, value in pcrs.items()}


def http_options(args) -> dict:
    """httpx options for a real deployment: CA bundle or --insecure, extra headers, a proxy."""
    import ssl

    options: dict = {}
    if args.ca_bundle and args.insecure:
        raise UsageError("--ca-bundle and --insecure exclude each other")
    if args.ca_bundle:
        try:
            options["verify"] = ssl.create_default_context(cafile=str(args.ca_bundle))
        except (OSError, ssl.SSLError) as error:
            raise _bad("--ca-bundle", args.ca_bundle, f"not a readable PEM CA bundle ({error})") from None
    if args.insecure:
        options["verify"] = False
    headers = {}
    for header in args.header or []:
        name, colon, value = header.partition(":")
        name = name.strip()
        if not colon or not name or any(not (ch.isalnum() or ch in "!#$%&'*+-.^_`|~") for ch in name) \
                or any(ch in value for ch in "\r\n\x00"):
            raise _bad("--header", repr(header), "must be 'Name: value' (an HTTP token, then a colon)")
        headers[name] = value.strip()
    if headers:
        options["headers"] = headers
    if args.proxy:
        parts = urllib.parse.urlsplit(args.proxy)
        if parts.scheme not in ("http", "https", "socks5") or not parts.hostname:
            raise _bad("--proxy", args.proxy, "not a proxy URL (http://host:port)")
        options["proxy"] = args.proxy
    return options


def prepare_report_dir(path: Path) -> Path:
    """Checked before anything runs: a run must never end with nowhere to write its verdict."""
    if path.exists() and not path.is_dir():
        raise _bad("--report-dir", path, "exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as error:
        raise _bad("--report-dir", path, f"cannot be written ({error.strerror or error})") from None
    return path


def profiles_of(values: list[str] | None) -> list[str]:
    """--profile core --profile accounts, or --profile core,accounts; default: every defined profile."""
    if not values:
        return list(PROFILES)
    chosen = [name.strip() for value in values for name in value.split(",") if name.strip()]
    for name in chosen:
        if name in RESERVED_PROFILES:
            raise _bad("--profile", name, "reserved: the spec does not define its operations yet")
        if name not in PROFILES:
            raise _bad("--profile", name, f"unknown (known: {', '.join(PROFILES)})")
    if not chosen:
        raise _bad("--profile", ",".join(values), "names no profile")
    return list(dict.fromkeys(chosen))


# ---- the target -------------------------------------------------------------------------------------

def preflight(client: VaultClient, timeout: float) -> None:
    """Raise CouldNotRun when the run cannot take place at all: unreachable, or not a Vault.

    Only a target that answers neither endpoint of §2 with JSON is "not a Vault"; anything that
    does is judged by the checks, so a broken Vault fails (exit 1) rather than escaping as 3.
    """
    answers = []
    for path in ("/health", "/api/v1/enclave"):
        try:
            response = client.get(path)
        except Exception as error:  # httpx transport errors and timeouts
            kind = type(error).__name__
            why = f"no answer within --timeout {timeout:g} s" if "Timeout" in kind else f"{kind}: {error or 'no detail'}"
            raise CouldNotRun(f"{client.base_url}{path} is unreachable ({why})") from None
        try:
            response.json()
            answers.append(True)
        except ValueError:
            answers.append(False)
    if not any(answers):
        raise CouldNotRun(f"{client.base_url} is not a Vault: neither /health nor /api/v1/enclave answers JSON")


def dev_root_from_target(client: VaultClient) -> bytes:
    try:
        response = client.get("/api/v1/enclave/attestation/dev-root")
        root = response.json()["rootPem"] if response.status_code == 200 else None
    except Exception:  # transport failure, not JSON, no member: the target serves no usable root
        root = None
    if not isinstance(root, str) or "-----BEGIN" not in root:
        raise UsageError("--attestation-root-from-target: the target serves no development root at "
                         "/api/v1/enclave/attestation/dev-root (a Vault on real Nitro hardware has none: "
                         "the AWS root is pinned by default)")
    return root.encode()


def _serves_dev_root(client: VaultClient) -> bool:
    try:
        return client.get("/api/v1/enclave/attestation/dev-root").status_code == 200
    except Exception:
        return False


class SpawnedReference:
    """``--spawn-reference``: the reference Vault with its embedded defaults, on a free loopback port,
    in a fresh temporary directory; stopped (and the directory removed) when the run ends."""

    def __init__(self, port: int = 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as error:
                # Never check whatever else answers there and call it the reference.
                raise CouldNotRun(f"--spawn-port {port}: 127.0.0.1:{port} is in use ({error.strerror})") from None
            self.port = probe.getsockname()[1]
        self._scratch = tempfile.TemporaryDirectory(prefix="vault-harness-reference-")
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, seconds: float = 60) -> "SpawnedReference":
        import httpx

        # A subprocess, never an import: the harness stays independent of the code it checks. Its
        # output goes to a file (a pipe nobody reads would block the server once it fills).
        self._log = open(Path(self._scratch.name) / "reference.log", "w+b")
        self.process = subprocess.Popen(
            [sys.executable, "-m", sibling("reference.cli"), "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", f"{self._scratch.name}/data"],
            stdout=self._log, stderr=subprocess.STDOUT,
            # the child finds the packages where this process found them (a launcher may add a path)
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self._log.seek(0)
                    last = (self._log.read().decode(errors="replace").strip().splitlines() or [""])[-1]
                    raise CouldNotRun(f"--spawn-reference: the reference exited with status "
                                      f"{self.process.returncode}" + (f" ({last})" if last else ""))
                try:
                    if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                        return self
                except httpx.HTTPError:
                    time.sleep(0.1)
            raise CouldNotRun(f"--spawn-reference: the reference did not answer /health within {seconds:g} s")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()
        self._scratch.cleanup()


# ---- output -----------------------------------------------------------------------------------------

class Printer:
    """One flushed line per finished check (CI logs show progress as it happens); on a terminal,
    a transient line names the check that is running. ``quiet`` prints only what is not OK;
    ``verbose`` prints expected/actual in full."""

    def __init__(self, quiet: bool, verbose: bool):
        self.quiet, self.verbose = quiet, verbose
        self.tty = sys.stdout.isatty()

    def line(self, text: str = "") -> None:
        print(text, flush=True)

    def started(self, check) -> None:
        if self.tty and not self.quiet:
            sys.stdout.write(f"\r\x1b[2K  running {check.id} ...")
            sys.stdout.flush()

    def finished(self, result) -> None:
        if self.tty:
            sys.stdout.write("\r\x1b[2K")
        if self.quiet and result.verdict in (Verdict.OK, Verdict.INFORMATIONAL):
            return
        verdict = result.verdict.value
        if self.tty:
            verdict = f"\x1b[{_COLOURS[result.verdict]}m{verdict:<16}\x1b[0m"
        else:
            verdict = f"{verdict:<16}"
        self.line(f"  {verdict} {result.check.id:<44} §{result.check.section:<6} {result.seconds:7.2f}s")
        if result.message and (result.verdict is not Verdict.OK):
            self.line(f"      {result.message}")
            if result.expected is not None or result.actual is not None:
                limit = None if self.verbose else 300
                self.line(f"      expected: {str(report.as_text(result.expected))[:limit]}")
                self.line(f"      actual:   {str(report.as_text(result.actual))[:limit]}")


# ---- commands ---------------------------------------------------------------------------------------

def selection_of(args) -> runner.Selection:
    """--select/--exclude id globs, --section, --level and --tag, checked (a typo selects nothing)."""
    from .suites.registry import Level

    levels = tuple(value.upper() for value in args.level or ())
    for level in levels:
        if level not in {lv.value for lv in Level}:
            raise _bad("--level", level, "must be MUST, SHOULD or INFO")
    known_tags = {tag for check in all_checks() for tag in check.tags}
    for tag in args.tag or ():
        if tag not in known_tags:
            raise _bad("--tag", tag, f"no check has it (tags: {', '.join(sorted(known_tags)) or 'none'})")
    for section in args.section or ():
        if not section.replace(".", "").isdigit() or section.startswith(".") or section.endswith("."):
            raise _bad("--section", section, "must be a section number such as 3 or 3.5")
    return runner.Selection(select=tuple(args.select or ()), exclude=tuple(args.exclude or ()),
                            sections=tuple(args.section or ()), levels=levels, tags=tuple(args.tag or ()))


def _add_selection_options(parser) -> None:
    parser.add_argument("--select", action="append", help="glob over check ids (repeatable), e.g. 'e2e/*': narrows "
                                                          "the selected profiles")
    parser.add_argument("--exclude", action="append", help="glob over check ids to leave out (repeatable)")
    parser.add_argument("--section", action="append", help="only checks of this spec section or below it, e.g. 3 or "
                                                           "3.5 (repeatable)")
    parser.add_argument("--level", action="append", help="only checks of this level: MUST, SHOULD or INFO (repeatable)")
    parser.add_argument("--tag", action="append", help="only checks with this tag, e.g. final (repeatable)")


def cmd_list(args) -> int:
    profiles = profiles_of(args.profile)
    selected, _ = runner.plan(all_checks(), profiles, selection=selection_of(args))
    for check in selected:
        print(f"{check.id:<44} §{check.section:<6} {check.profile:<12} {check.level.value:<6} {check.requirement}")
    return 0


def _options_record(args) -> dict:
    return {name: (str(value) if isinstance(value, Path) else
                   [str(v) if isinstance(v, Path) else v for v in value] if isinstance(value, list) else value)
            for name, value in vars(args).items() if name not in ("func", "command")}


def cmd_run(args) -> int:
    # Every input is checked before anything runs.
    if bool(args.target) == bool(args.spawn_reference):
        raise UsageError("run needs exactly one of --target URL and --spawn-reference")
    target = check_target(args.target) if args.target else None
    check_count("--spawn-port", args.spawn_port, minimum=0, maximum=65535)
    check_positive("--timeout", args.timeout, maximum=3600)
    check_positive("--deadline", args.deadline)
    check_count("--examples", args.examples)
    check_count("--seed", args.seed, minimum=0, maximum=2**64 - 1)
    profiles = profiles_of(args.profile)
    known = {c.id for c in all_checks()}
    expected_failures = []
    if args.expected_failures is not None:
        try:
            expected_failures = waivers.load(args.expected_failures)
            waivers.check_known(expected_failures, known, str(args.expected_failures))
        except waivers.WaiverError as error:
            raise UsageError(f"--expected-failures {error}") from None
    checks, not_selected = runner.plan(all_checks(), profiles, selection=selection_of(args))
    if not checks:
        raise UsageError(f"--select/--exclude/--section/--level/--tag: no check of the profiles "
                         f"{', '.join(profiles)} is left")
    roots = [read_root(path) for path in args.attestation_root or []]
    expected = [read_pcrs(path) for path in args.expected_pcrs or []]
    expected += [pcrs_of_eif(path) for path in args.expected_pcrs_from_eif or []]
    transport = http_options(args)
    report_dir = prepare_report_dir(args.report_dir) if args.report_dir else None
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    info = report.RunInfo(options=_options_record(args), seed=seed, started_at=datetime.now(timezone.utc))
    out = Printer(args.quiet, args.verbose)

    spawned = None
    if args.spawn_reference:
        out.line("vault-harness: starting the reference Vault (embedded defaults, simulated NSM, mock KMS) ...")
        spawned = SpawnedReference(args.spawn_port).start()
        target = spawned.url
        # The spawned reference signs with its development root: trusting it is right here, and only here.
        args.attestation_root_from_target = True
        if not expected:
            args.allow_debug = True
    client = VaultClient(target, timeout=args.timeout, http_options=transport)
    try:
        preflight(client, args.timeout)
        if args.attestation_root_from_target:
            roots.append(dev_root_from_target(client))
        options = {"examples": args.examples, "seed": seed, "allow_debug": args.allow_debug,
                   "attestation_roots": roots, "expected_pcrs": expected or None}
        if args.quick:
            options.update(QUICK_OPTIONS, examples=args.examples or QUICK_OPTIONS["examples"])
        ctx = Context(target, client, options)
        out.line(f"vault-harness {report.harness_version()} (spec {SPEC_VERSION}): {len(checks)} checks of "
                 f"profiles {', '.join(profiles)} against {target}; seed {seed} (replay with --seed {seed})")
        deadline = time.monotonic() + args.deadline if args.deadline else None
        with _ctrl_c_noted() as interrupted:
            outcome = runner.run(checks, ctx, expected_failures=expected_failures, strict=args.strict,
                                 on_start=out.started, on_result=out.finished, not_selected=not_selected,
                                 profiles=profiles, deadline=deadline, fail_fast=args.fail_fast,
                                 interrupted=interrupted.is_set)
        hint = _hint(outcome, client, args)
    finally:
        client.close()
        if spawned:
            spawned.stop()

    counts = ", ".join(f"{n} {v}" for v, n in sorted(outcome.counts().items()))
    out.line(f"{'PASSED' if outcome.passed() else 'FAILED'}: {counts} in {outcome.seconds:.1f} s")
    if outcome.incomplete:
        out.line(f"incomplete: {outcome.incomplete}")
    failing = outcome.failing()
    if failing:
        out.line("failing the run: " + ", ".join(f"{r.check.id} ({r.verdict.value})" for r in failing))
    for pattern in outcome.unused_waivers:
        out.line(f"unused waiver: {pattern} matched no selected check")
    if hint:
        out.line(f"hint: {hint}")
    if report_dir:
        written = report.write_all(report_dir, outcome, info)
        out.line("reports: " + ", ".join(str(path) for path in written))
    if outcome.incomplete and outcome.incomplete.startswith("interrupted"):
        return EXIT_INTERRUPTED
    return EXIT_CONFORMS if outcome.passed() else EXIT_DOES_NOT_CONFORM


@contextlib.contextmanager
def _ctrl_c_noted():
    """SIGINT also sets an event: Python drops a KeyboardInterrupt raised inside a garbage-collector
    callback (hypothesis registers one), and the run must stop all the same."""
    noted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield noted
        return

    def on_sigint(signum, frame):
        noted.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, previous)


def _hint(outcome, client: VaultClient, args) -> str | None:
    """What to do when the failures look like a setup mistake rather than a broken Vault."""
    attestation_failed = any(r.verdict in (Verdict.FAILED, Verdict.ERROR) and r.check.profile in ("attestation", "kms")
                             for r in outcome.results)
    if attestation_failed and not args.attestation_root and not args.attestation_root_from_target \
            and _serves_dev_root(client):
        return ("the target signs attestation documents with a development root (a simulated NSM); the AWS root "
                "is pinned by default. For a development Vault add --attestation-root-from-target --allow-debug "
                "(or use --spawn-reference to check the reference itself).")
    return None


# --quick: every check still runs (each MUST is still shown), with less repetition: fewer property
# examples, a smaller freshness sample, shorter state-machine runs. bench/bench_quick.py times it.
QUICK_OPTIONS = {"examples": 3, "freshness_samples": 40, "stateful_steps": 4}


# Subcommands whose parser lives with their code: every argument after the name goes to it.
DELEGATED = {
    "audit-policy": (".kms.audit", "audit a KMS key policy against attested PCRs"),
    "kms-serve": (".kms.server", "serve the mocked KMS (AWS JSON protocol)"),
}


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = _Parser(prog="vault-harness", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version",
                        version=f"vault-harness {report.harness_version()} (spec {SPEC_VERSION}, report schema "
                                f"{report.SCHEMA_VERSION})")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    listing = sub.add_parser("list", help="list the checks", formatter_class=formatter)
    _add_selection_options(listing)
    listing.add_argument("--profile", action="append", help=f"profiles to list (default: all of {', '.join(PROFILES)})")
    listing.set_defaults(func=cmd_list)
    run = sub.add_parser("run", help="run the checks against a target", formatter_class=formatter)
    where = run.add_argument_group("target")
    where.add_argument("--target", help="base URL of the Vault, e.g. http://127.0.0.1:8080")
    where.add_argument("--spawn-reference", action="store_true",
                       help="start the reference Vault with its embedded defaults on a free loopback port, check "
                            "it, stop it (trusts its development attestation root)")
    where.add_argument("--spawn-port", type=int, default=0, help="port for --spawn-reference (0: a free one); "
                                                                  "a port in use is refused")
    where.add_argument("--timeout", type=float, default=10.0, help="seconds for each HTTP request")
    where.add_argument("--ca-bundle", type=Path, help="PEM file of CAs to trust for an https target (default: the "
                                                      "system's)")
    where.add_argument("--insecure", action="store_true", help="do not verify the target's TLS certificate (the "
                                                               "envelope is end-to-end encrypted either way)")
    where.add_argument("--header", action="append", help="'Name: value' sent with every request, e.g. a gateway's "
                                                         "API key (repeatable)")
    where.add_argument("--proxy", help="HTTP(S) proxy URL to reach the target through")
    what = run.add_argument_group("what to check")
    what.add_argument("--profile", action="append",
                      help=f"conformance profile(s) to require, repeatable or comma-separated (default: all of "
                           f"{', '.join(PROFILES)}); every MUST of a selected profile is required")
    _add_selection_options(what)
    what.add_argument("--strict", action="store_true", help="a failed SHOULD fails the run")
    what.add_argument("--expected-failures", type=Path,
                      help="waiver file: 'ID-OR-GLOB | reason [| failure message]' a line")
    what.add_argument("--examples", type=int, default=None, help="hypothesis examples per property check "
                                                                 "(default: each check's own)")
    what.add_argument("--seed", type=int, default=None, help="seed of the property checks (default: a random one, "
                                                             "printed and recorded so the run can be replayed)")
    how = run.add_argument_group("how long")
    how.add_argument("--deadline", type=float, default=None,
                     help="seconds for the whole run; checks not started by then are NOT-RUN and the run fails")
    how.add_argument("--quick", action="store_true",
                     help="every check, less repetition (property examples, freshness sample, state-machine steps): "
                          "for every commit; the full run for releases")
    how.add_argument("--fail-fast", action="store_true", help="stop after the first result that fails the run")
    att = run.add_argument_group("attestation")
    att.add_argument("--attestation-root", type=Path, action="append",
                     help="PEM/DER root to pin for attestation (repeatable; default: the AWS Nitro root G1)")
    att.add_argument("--attestation-root-from-target", action="store_true",
                     help="INSECURE, development only: pin the root a simulated NSM publishes")
    att.add_argument("--expected-pcrs", type=Path, action="append",
                     help="describe-eif JSON or {\"PCR0\": hex}: an allowed PCR set (repeatable: rolling deploys)")
    att.add_argument("--expected-pcrs-from-eif", type=Path, action="append",
                     help="an EIF file: its PCR0/1/2(/8), computed here, form an allowed set (repeatable)")
    att.add_argument("--allow-debug", action="store_true", help="accept debug-mode (all-zero PCR0) documents")
    output = run.add_argument_group("output")
    output.add_argument("--report-dir", type=Path, help="write report.json, junit.xml and report.html here")
    noise = output.add_mutually_exclusive_group()
    noise.add_argument("--quiet", "-q", action="store_true", help="print only results that are not OK, and the verdict")
    noise.add_argument("--verbose", "-v", action="store_true", help="print expected/actual in full")
    run.set_defaults(func=cmd_run)
    for name, (_, text) in DELEGATED.items():
        sub.add_parser(name, help=f"{text} (see `vault-harness {name} --help`)", add_help=False)
    return parser, {"list": listing, "run": run}


def _main(argv: list[str]) -> int:
    if argv and argv[0] in DELEGATED:
        import importlib

        return importlib.import_module(DELEGATED[argv[0]][0], __package__).main(argv[1:])
    parser, commands = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(extra)}")
    return args.func(args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for stream in (sys.stdout, sys.stderr):  # a console that cannot show '§' must not crash a run
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, not at exit: a reader gone by then is a BrokenPipeError caught below
        return code
    except UsageError as error:
        print(f"vault-harness: {error}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except CouldNotRun as error:
        print(f"vault-harness: could not run: {error}", file=sys.stderr, flush=True)
        return EXIT_COULD_NOT_RUN
    except KeyboardInterrupt:
        print("\nvault-harness: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`vault-harness list | head`): stop quietly, as shell tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    raise SystemExit(main())
