"""The harness inside an implementer's own pytest suite: ``pytest --vault-target URL``.

Installed with the package (entry point ``pytest11``), inert unless ``--vault-target`` is given.
Each selected check becomes one pytest item named by its id, run in the harness's own order
(the checks tagged ``final`` judge the whole run's record, so they come last) against one shared
client. Verdicts map onto pytest's outcomes as the CLI's gate does: OK and INFORMATIONAL pass
(an observation is attached to the item's report), a NON-STRICT SHOULD passes unless
``--vault-strict``, and FAILED, ERROR and an UNIMPLEMENTED MUST fail. The CLI stays the tool for
reports, waivers and exit codes; this is for suites that already run under pytest.

    pytest --vault-target http://127.0.0.1:8080 --vault-profile core,accounts [-k 'e2e/']
"""

from __future__ import annotations

import pytest

from .runner import is_failing, plan, run_check
from .suites.registry import PROFILES, Context, Verdict, all_checks


def pytest_addoption(parser):
    group = parser.getgroup("vault-harness", "Vault conformance checks (vault-harness)")
    group.addoption("--vault-target", help="base URL of a Vault: adds one test item per conformance check")
    group.addoption("--vault-profile", action="append",
                    help=f"profiles to check, repeatable or comma-separated (default: all of {', '.join(PROFILES)})")
    group.addoption("--vault-select", action="append", help="glob over check ids (repeatable)")
    group.addoption("--vault-examples", type=int, help="hypothesis examples per property check")
    group.addoption("--vault-seed", type=int, help="seed of the property checks")
    group.addoption("--vault-timeout", type=float, default=10.0, help="seconds for each HTTP request")
    group.addoption("--vault-strict", action="store_true", help="a failed SHOULD fails its item")
    group.addoption("--vault-attestation-root-from-target", action="store_true",
                    help="INSECURE, development only: pin the root a simulated NSM publishes")
    group.addoption("--vault-allow-debug", action="store_true", help="accept debug-mode attestation documents")


class VaultCheckFailed(Exception):
    pass


class VaultCheckItem(pytest.Item):
    def __init__(self, *, check, **kwargs):
        super().__init__(**kwargs)
        self.check = check
        self.add_marker(pytest.mark.vault)

    def runtest(self):
        config = self.config
        ctx = config._vault_context
        result = run_check(self.check, ctx)
        if result.verdict is Verdict.INFORMATIONAL and result.message:
            self.add_report_section("call", "observation", result.message)
        if is_failing(result, strict=config.getoption("vault_strict")):
            raise VaultCheckFailed(result)
        if result.verdict is Verdict.NON_STRICT:
            self.add_report_section("call", "NON-STRICT", result.message)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, VaultCheckFailed):
            result = excinfo.value.args[0]
            lines = [f"{result.verdict.value}: {result.check.id} (§{result.check.section} {result.check.level.value})",
                     f"requirement: {result.check.requirement}", result.message]
            if result.expected is not None or result.actual is not None:
                lines += [f"expected: {result.expected!r}", f"actual:   {str(result.actual)[:2000]!r}"]
            return "\n".join(lines)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return f"vault:{self.check.id}", None, f"{self.check.id} [§{self.check.section} {self.check.level.value}]"


def pytest_configure(config):
    config.addinivalue_line("markers", "vault: a vault-harness conformance check (pytest --vault-target)")


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselect: they apply to these items too
def pytest_collection_modifyitems(session, config, items):
    target = config.getoption("vault_target")
    if not target:
        return
    from .cli import UsageError, check_target, dev_root_from_target, profiles_of
    from .protocol.client import VaultClient

    try:
        target = check_target(target)
        profiles = profiles_of(config.getoption("vault_profile"))
    except UsageError as error:
        raise pytest.UsageError(str(error).replace("--", "--vault-", 1)) from None
    checks, _ = plan(all_checks(), profiles, config.getoption("vault_select"))
    client = VaultClient(target.rstrip("/"), timeout=config.getoption("vault_timeout"))
    roots = [dev_root_from_target(client)] if config.getoption("vault_attestation_root_from_target") else []
    config._vault_context = Context(target, client, {
        "examples": config.getoption("vault_examples"), "seed": config.getoption("vault_seed"),
        "allow_debug": config.getoption("vault_allow_debug"), "attestation_roots": roots, "expected_pcrs": None})
    config.add_cleanup(client.close)
    items.extend(VaultCheckItem.from_parent(session, name=check.id, check=check) for check in checks)
