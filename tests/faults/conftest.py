"""The throwaway PostgreSQL cluster of the storage tests, for the faults on PostgreSQL."""

from tests.storage.conftest import postgres_cluster  # noqa: F401  (a fixture, used by name)


def pytest_configure(config):
    config.addinivalue_line("markers", "faults: injects a fault (kill -9, full disk, clock skew) into reference processes")
    config.addinivalue_line("markers", "long: over 20 s (a Locust run, a timeout waited out); not in the main suite")
