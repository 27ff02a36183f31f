"""Fixtures for end-to-end tests: real service processes against the test database."""

import pytest

from callbacks.domain.vocabulary import FINAL_STATUSES
from callbacks.models import CallbackTask
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


def create_callbacks(api, count, url, **fields):
    created = []
    for start in range(0, count, 250):
        batch = [{"url": url, "body": {"n": n}, **fields} for n in range(start, min(count, start + 250))]
        response = api.post("/api/v1/callbacks/batch/", {"callbacks": batch}, format="json")
        assert response.status_code == 201, response.content
        created.extend(item["id"] for item in response.json()["callbacks"])
    return created


def unfinished():
    return CallbackTask.objects.exclude(status__in=FINAL_STATUSES).count()
