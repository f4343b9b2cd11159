"""The throwaway PostgreSQL cluster of the storage tests, for the two-instance run."""

from tests.storage.conftest import postgres_cluster  # noqa: F401  (a fixture, used by name)


def pytest_configure(config):
    config.addinivalue_line("markers", "load: runs Locust for a fixed time against reference processes")
    config.addinivalue_line("markers", "long: over 20 s (a Locust run, a timeout waited out); not in the main suite")
