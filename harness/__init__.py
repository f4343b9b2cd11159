

# The project's four packages are top-level in a source checkout (``harness``) and live under
# ``nitro_vault.`` when installed (README, "Packaging"); cross-package imports and ``python -m``
# names go through this, so both work.
_PREFIX = __name__[: -len("harness")]


def sibling(name: str) -> str:
    """The import name of a sibling package: ``sibling("vectors")`` is ``vectors`` in a checkout,
    ``nitro_vault.vectors`` in an installed wheel."""
    return _PREFIX + name
