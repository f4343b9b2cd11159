"""``vault-harness``: check a Vault at any URL against the spec and write reports CI can gate on.

Exit status (run):
  0  the target conforms to every selected profile (with --strict, every SHOULD holds too)
  1  it does not: a MUST FAILED or is UNIMPLEMENTED, a check hit an ERROR, or a listed expected
     failure passed (UNEXPECTED-PASS)
  2  bad usage (unknown option, profile or check id, unreadable file)
  3  the run could not take place: the target is unreachable within --timeout, or is not a Vault
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import report, runner
from .protocol.client import VaultClient
from .suites.registry import PROFILES, RESERVED_PROFILES, Context, Verdict, all_checks

EXIT_CONFORMS, EXIT_DOES_NOT_CONFORM, EXIT_USAGE, EXIT_COULD_NOT_RUN = 0, 1, 2, 3

_COLOURS = {Verdict.OK: "32", Verdict.FAILED: "31", Verdict.ERROR: "31", Verdict.UNEXPECTED_PASS: "31",
            Verdict.NON_STRICT: "33", Verdict.WAIVED: "33", Verdict.INFORMATIONAL: "36", Verdict.UNIMPLEMENTED: "31",
            Verdict.NOT_SELECTED: "90"}


def _read_expected_failures(path: Path | None) -> set[str]:
    if path is None:
        return set()
    ids = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            ids.add(line)
    return ids


def _print_result(result, colour: bool) -> None:
    verdict = result.verdict.value
    if colour:
        verdict = f"\x1b[{_COLOURS[result.verdict]}m{verdict}\x1b[0m"
    print(f"  {verdict:<16} {result.check.id:<40} §{result.check.section}")
    if result.message and result.verdict is not Verdict.OK:
        print(f"      {result.message}")
        if result.expected is not None or result.actual is not None:
            print(f"      expected: {result.expected!r}\n      actual:   {str(result.actual)[:300]!r}")


def _read_pcrs(path: Path) -> dict[int, bytes]:
    """PCRs from nitro-cli describe-eif / vault-eif describe JSON ("Measurements") or {"PCR0": hex, ...}."""
    document = json.loads(path.read_text())
    table = document.get("Measurements", document) if isinstance(document, dict) else {}
    pcrs = {int(name[3:]): bytes.fromhex(value) for name, value in table.items()
            if name.startswith("PCR") and name[3:].isdigit()}
    if not pcrs:
        raise ValueError(f"{path}: no PCRn values found")
    return pcrs


def _pcrs_of_eif(path: Path) -> dict[int, bytes]:
    """Measure an EIF here, the way nitro-cli does, instead of trusting anyone's numbers."""
    from enclave_build import EifBuildError, inspect_eif

    try:
        with path.open("rb") as eif:
            measured = inspect_eif(eif).measurements
    except EifBuildError as error:
        raise ValueError(f"{path}: not a valid EIF ({error})") from None
    pcrs = {0: measured.pcr0, 1: measured.pcr1, 2: measured.pcr2}
    if measured.pcr8 is not None:
        pcrs[8] = measured.pcr8
    return {index: bytes.fromhex(value) for index, value in pcrs.items()}


def _dev_root_from_target(client: VaultClient) -> bytes:
    response = client.get("/api/v1/enclave/attestation/dev-root")
    if response.status_code != 200:
        raise ValueError(f"the target serves no development root (HTTP {response.status_code})")
    return response.json()["rootPem"].encode()


def _profiles(values: list[str] | None) -> list[str]:
    """--profile core --profile accounts, or --profile core,accounts; default: every defined profile."""
    if not values:
        return list(PROFILES)
    chosen = [name.strip() for value in values for name in value.split(",") if name.strip()]
    for name in chosen:
        if name in RESERVED_PROFILES:
            raise ValueError(f"profile {name!r} is reserved: the spec does not define its operations yet")
        if name not in PROFILES:
            raise ValueError(f"unknown profile {name!r} (known: {', '.join(PROFILES)})")
    return list(dict.fromkeys(chosen))


def _preflight(client: VaultClient) -> str | None:
    """Why the run cannot take place at all (None when it can): unreachable, or not a Vault.

    Only a target that answers neither endpoint of §2 with JSON is "not a Vault"; anything that
    does is judged by the checks, so a broken Vault fails (exit 1) rather than escaping as 3.
    """
    answers = []
    for path in ("/health", "/api/v1/enclave"):
        try:
            response = client.get(path)
        except Exception as error:  # httpx transport errors, timeouts, bad URLs
            return f"{client.base_url}{path} is unreachable ({type(error).__name__}: {error or 'no detail'})"
        try:
            response.json()
            answers.append(True)
        except ValueError:
            answers.append(False)
    if not any(answers):
        return f"{client.base_url} is not a Vault: neither /health nor /api/v1/enclave answers JSON"
    return None


def cmd_list(args) -> int:
    try:
        profiles = _profiles(args.profile)
    except ValueError as error:
        print(f"vault-harness: {error}", file=sys.stderr)
        return EXIT_USAGE
    selected, _ = runner.plan(all_checks(), profiles, args.select)
    for check in selected:
        print(f"{check.id:<44} §{check.section:<6} {check.profile:<12} {check.level.value:<6} {check.requirement}")
    return 0


def cmd_run(args) -> int:
    known = {c.id for c in all_checks()}
    try:
        profiles = _profiles(args.profile)
        expected_failures = _read_expected_failures(args.expected_failures)
    except (OSError, ValueError) as error:
        print(f"vault-harness: {error}", file=sys.stderr)
        return EXIT_USAGE
    unknown = expected_failures - known
    if unknown:
        print(f"unknown check ids in {args.expected_failures}: {', '.join(sorted(unknown))}", file=sys.stderr)
        return EXIT_USAGE
    checks, not_selected = runner.plan(all_checks(), profiles, args.select)
    if not checks:
        print("no check of the selected profiles matches --select", file=sys.stderr)
        return EXIT_USAGE
    try:
        client = VaultClient(args.target, timeout=args.timeout)
    except Exception as error:
        print(f"vault-harness: bad --target {args.target!r}: {error}", file=sys.stderr)
        return EXIT_USAGE
    cannot_run = _preflight(client)
    if cannot_run:
        print(f"vault-harness: could not run: {cannot_run}", file=sys.stderr)
        client.close()
        return EXIT_COULD_NOT_RUN
    options = {"examples": args.examples, "derandomize": args.seed is not None, "allow_debug": args.allow_debug}
    try:
        options["attestation_roots"] = [path.read_bytes() for path in args.attestation_root or []]
        if args.attestation_root_from_target:
            options["attestation_roots"].append(_dev_root_from_target(client))
        expected = [_read_pcrs(path) for path in args.expected_pcrs or []]
        expected += [_pcrs_of_eif(path) for path in args.expected_pcrs_from_eif or []]
        options["expected_pcrs"] = expected or None
    except (OSError, ValueError) as error:
        print(f"vault-harness: {error}", file=sys.stderr)
        client.close()
        return EXIT_USAGE
    ctx = Context(args.target, client, options)
    colour = sys.stdout.isatty()
    print(f"vault-harness: {len(checks)} checks of profiles {', '.join(profiles)} against {args.target}")
    outcome = runner.run(checks, ctx, expected_failures=expected_failures, strict=args.strict,
                         on_result=lambda r: _print_result(r, colour), not_selected=not_selected,
                         profiles=profiles)
    client.close()
    counts = ", ".join(f"{n} {v}" for v, n in sorted(outcome.counts().items()))
    print(f"{'PASSED' if outcome.passed() else 'FAILED'}: {counts}")
    failing = outcome.failing()
    if failing:
        print("failing the run: " + ", ".join(f"{r.check.id} ({r.verdict.value})" for r in failing))
    if args.report_dir:
        args.report_dir.mkdir(parents=True, exist_ok=True)
        (args.report_dir / "report.json").write_text(json.dumps(report.to_json(outcome), indent=2))
        (args.report_dir / "junit.xml").write_bytes(report.to_junit(outcome))
        print(f"reports: {args.report_dir / 'report.json'}, {args.report_dir / 'junit.xml'}")
    return EXIT_CONFORMS if outcome.passed() else EXIT_DOES_NOT_CONFORM


# Subcommands whose parser lives with their code: every argument after the name goes to it.
DELEGATED = {
    "audit-policy": ("harness.kms.audit", "audit a KMS key policy against attested PCRs"),
    "kms-serve": ("harness.kms.server", "serve the mocked KMS (AWS JSON protocol)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vault-harness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="list the checks")
    listing.add_argument("--select", action="append", help="glob over check ids (repeatable)")
    listing.add_argument("--profile", action="append", help=f"profiles to list (default: all of {', '.join(PROFILES)})")
    listing.set_defaults(func=cmd_list)
    run = sub.add_parser("run", help="run the checks against a target")
    run.add_argument("--target", required=True, help="base URL of the Vault, e.g. http://127.0.0.1:8080")
    run.add_argument("--profile", action="append",
                     help=f"conformance profile(s) to require, repeatable or comma-separated (default: all of "
                          f"{', '.join(PROFILES)}); every MUST of a selected profile is required")
    run.add_argument("--select", action="append", help="glob over check ids (repeatable), e.g. 'e2e/*': narrows "
                                                       "the selected profiles")
    run.add_argument("--strict", action="store_true", help="a failed SHOULD fails the run")
    run.add_argument("--expected-failures", type=Path, help="file of check ids expected to fail (one per line)")
    run.add_argument("--report-dir", type=Path, help="write report.json and junit.xml here")
    run.add_argument("--examples", type=int, default=None, help="hypothesis examples per property check")
    run.add_argument("--seed", type=int, default=None, help="derandomize the property checks")
    run.add_argument("--timeout", type=float, default=10.0, help="HTTP timeout in seconds")
    run.add_argument("--attestation-root", type=Path, action="append",
                     help="PEM/DER root to pin for attestation (repeatable; default: the AWS Nitro root G1)")
    run.add_argument("--attestation-root-from-target", action="store_true",
                     help="INSECURE, development only: pin the root a simulated NSM publishes")
    run.add_argument("--expected-pcrs", type=Path, action="append",
                     help="describe-eif JSON or {\"PCR0\": hex}: an allowed PCR set (repeatable: rolling deploys)")
    run.add_argument("--expected-pcrs-from-eif", type=Path, action="append",
                     help="an EIF file: its PCR0/1/2(/8), computed here, form an allowed set (repeatable)")
    run.add_argument("--allow-debug", action="store_true", help="accept debug-mode (all-zero PCR0) documents")
    run.set_defaults(func=cmd_run)
    for name, (_, text) in DELEGATED.items():
        sub.add_parser(name, help=f"{text} (see `vault-harness {name} --help`)", add_help=False)
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DELEGATED:
        import importlib

        return importlib.import_module(DELEGATED[argv[0]][0]).main(argv[1:])
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
