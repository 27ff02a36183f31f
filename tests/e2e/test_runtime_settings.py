"""Run-time settings against real processes: a running worker takes up a new concurrency within 10 s."""

import time

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.e2e.helpers import create_callbacks, unfinished
from tests.processes import wait_until
from tests.receivers import Reply

pytestmark = [pytest.mark.e2e]


def test_running_workers_take_up_a_concurrency_change_without_restart(api, receiver, service):
    receiver.respond = Reply(delay=0.3)
    service("dispatcher", ["run_dispatcher"])
    service("workers", ["qcluster"], CALLBACKS_WORKER_PROCESSES=1, CALLBACKS_CONCURRENCY=2)

    create_callbacks(api, 20, receiver.url)
    wait_until(lambda: unfinished() == 0, timeout=60, message="the first round")
    assert receiver.max_in_flight == 2

    operator = APIClient()
    operator.force_authenticate(get_user_model().objects.create_superuser("ops", "ops@example.com", "pw"))
    assert operator.patch("/api/v1/settings/", {"CONCURRENCY": 6}, format="json").status_code == 200
    changed_at = time.monotonic()

    # Keep work flowing until the worker uses the new limit; it must within 10 s of the change.
    receiver.max_in_flight = 0
    while receiver.max_in_flight < 6:
        assert time.monotonic() - changed_at < 10 + 5, "the new concurrency was not taken up"
        create_callbacks(api, 12, receiver.url)
        wait_until(lambda: unfinished() == 0, timeout=60, message="a round of callbacks")
    assert receiver.max_in_flight == 6
