"""End to end: a receiver that answers 429 is slowed down and then brought back (the origin's
concurrency_limit on its breaker row, obeyed by the leader's claim and the lanes' refills of every worker
process). The receiver counts the requests it holds at once: its maximum falls while it answers 429, and
climbs back to the configured limit once it stops; every callback is delivered in the end."""

import threading

import pytest

from callbacks.models import CallbackTask, CircuitBreaker, TaskStatus
from tests.e2e.helpers import create_callbacks, unfinished
from tests.processes import wait_until
from tests.receivers import Reply

pytestmark = [pytest.mark.e2e]


def test_a_receiver_answering_429_gets_fewer_callbacks_in_flight_then_its_limit_back(api, receiver, service):
    limit, count = 8, 500
    busy = threading.Event()
    receiver.respond = lambda request: (
        Reply(status=429, headers={"Retry-After": "1"}, delay=0.05) if busy.is_set() else Reply(delay=0.05)
    )
    env = {
        "CALLBACKS_WORKER_PROCESSES": 2,
        "CALLBACKS_MAX_CONCURRENCY_PER_ORIGIN": limit,
        # The breaker would stop everything after a few 429s; here the slowing down is under test.
        "CALLBACKS_BREAKER_FAILURE_THRESHOLD": 1000,
    }
    service("dispatcher", ["run_dispatcher"], **env)
    service("workers", ["qcluster"], **env)
    create_callbacks(api, count, receiver.url + "/hook", max_retries=10, backoff={"initial_seconds": 0.2})
    wait_until(lambda: receiver.max_in_flight == limit, timeout=60, message="the configured limit in use")

    busy.set()
    wait_until(
        lambda: CircuitBreaker.objects.filter(concurrency_limit=1).exists() and receiver.in_flight <= 1,
        timeout=30,
        message="the origin slowed down to one in flight, and the sends started before to end",
    )
    receiver.max_in_flight = 0
    answered_429 = len(receiver.received)
    receiver.wait_for(answered_429 + 30, timeout=60)
    assert receiver.max_in_flight == 1  # fell from the limit, while it kept answering 429

    busy.clear()
    receiver.max_in_flight = 0

    def back_at_the_limit() -> bool:
        # The limit grows back one healthy answer at a time; on a busy machine the sends may not overlap
        # up to it before the backlog is gone, so more callbacks then, until they do.
        if receiver.max_in_flight < limit and unfinished() == 0:
            create_callbacks(api, 100, receiver.url + "/hook")
        return receiver.max_in_flight >= limit

    wait_until(back_at_the_limit, timeout=120, message="the configured limit in use again")
    wait_until(lambda: unfinished() == 0, timeout=180, message="every callback to end final")
    assert receiver.max_in_flight == limit  # recovered, and never beyond
    assert CircuitBreaker.objects.get(origin=receiver.url).concurrency_limit is None  # no longer slowed
    assert set(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}
    delivered = {r.headers["x-callback-task-id"] for r in receiver.received}
    assert delivered == {str(task_id) for task_id in CallbackTask.objects.values_list("id", flat=True)}
