"""Conformance suites: one module per area of the spec; importing a module registers its checks."""

import importlib
import pkgutil
import sys

# CPython's default. py_ecc (under eth-account, which the eoa and tokens suites use) raises the
# interpreter's recursion limit to 100000 on import; with that limit the standard library's C
# JSON scanner overflows the C stack on a deeply nested body (the harness sends and reads such
# bodies) and the process dies with SIGSEGV instead of raising RecursionError.
_RECURSION_LIMIT = 1000


def load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name != "registry":
            importlib.import_module(f"{__name__}.{info.name}")
    sys.setrecursionlimit(min(sys.getrecursionlimit(), _RECURSION_LIMIT))
