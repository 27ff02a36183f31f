"""Fixtures for end-to-end tests: real service processes against the test database."""

import pytest

from tests.processes import ServiceProcess, service_env


@pytest.fixture
def service(transactional_db, tmp_path):
    """start(name, args, **env) -> a running manage.py process; all stopped at the end."""
    started: list[ServiceProcess] = []

    def start(name, args, **env):
        process = ServiceProcess(name, args, service_env(tmp_path / "var", **env), tmp_path)
        started.append(process)
        return process

    yield start
    # Stop every process, then report the first that would not stop: one left running would
    # act as a second dispatcher (or cluster) in the tests that follow.
    failures = []
    for process in reversed(started):
        try:
            process.stop()
        except AssertionError as exc:
            process.kill_group()
            failures.append(exc)
    if failures:
        raise failures[0]
