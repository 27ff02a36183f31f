"""End to end: circuit breakers and per-origin limits with real run_dispatcher and qcluster processes.

Two worker processes share breaker state and limits through the database; receivers on 127.0.0.1
count what reaches them (requests, and requests in flight at once).
"""

from collections import Counter

import pytest

from callbacks.domain.vocabulary import FINAL_STATUSES
from callbacks.models import BreakerState, CallbackTask, CircuitBreaker, TaskExecution, TaskStatus
from tests.e2e.helpers import create_callbacks, unfinished
from tests.processes import wait_until
from tests.receivers import Receiver, Reply

pytestmark = [pytest.mark.e2e]


def test_breaker_opens_holds_probes_once_and_closes_across_two_worker_processes(api, receiver, service):
    threshold, open_seconds, probe_delay = 3, 2, 1.0

    def respond(request):
        if request.seq <= threshold:
            return Reply(status=503)
        if request.seq == threshold + 1:
            return Reply(delay=probe_delay)  # the probe: slow, so a second probe would show
        return Reply()

    receiver.respond = respond
    env = {
        "CALLBACKS_WORKER_PROCESSES": 2,
        "CALLBACKS_BREAKER_FAILURE_THRESHOLD": threshold,
        "CALLBACKS_BREAKER_OPEN_SECONDS": open_seconds,
    }
    service("dispatcher", ["run_dispatcher"], **env)
    service("workers", ["qcluster"], **env)

    first = create_callbacks(
        api, threshold, receiver.url + "/hook", max_retries=5, backoff={"initial_seconds": 0.5}
    )
    opened = wait_until(
        lambda: CircuitBreaker.objects.filter(state=BreakerState.OPEN).first(),
        timeout=60,
        message="the breaker to open",
    )
    later = create_callbacks(api, 20, receiver.url + "/hook", max_retries=5)
    wait_until(lambda: unfinished() == 0, timeout=120, message="every callback to end final")

    received = receiver.received
    failures, probe, after = received[:threshold], received[threshold], received[threshold + 1 :]
    assert {r.headers["x-callback-task-id"] for r in failures} == set(first)  # exactly the threshold failed
    assert probe.at >= opened.opened_at.timestamp() + open_seconds  # nothing while open
    assert min(r.at for r in after) >= probe.at + probe_delay  # one probe, then the rest
    assert len(received) == threshold + len(first) + len(later)  # each failed task retried once, no more
    # No attempt was used while the breaker held the tasks: attempts are requests the receiver saw.
    per_task = Counter(r.headers["x-callback-task-id"] for r in received)
    attempts = dict(CallbackTask.objects.values_list("id", "attempts"))
    assert {str(task_id): n for task_id, n in attempts.items()} == dict(per_task)
    assert Counter(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED: 23}
    assert TaskExecution.objects.filter(outcome="http_5xx").count() == threshold
    closed = CircuitBreaker.objects.get(pk=opened.pk)
    assert (closed.state, closed.open_count, closed.consecutive_failures) == (BreakerState.CLOSED, 0, 0)


def test_the_per_origin_limit_holds_across_two_worker_processes(api, receiver, service):
    receiver.respond = Reply(delay=0.3)
    env = {"CALLBACKS_WORKER_PROCESSES": 2, "CALLBACKS_MAX_CONCURRENCY_PER_ORIGIN": 3}
    service("dispatcher", ["run_dispatcher"], **env)
    service("workers", ["qcluster"], **env)

    create_callbacks(api, 30, receiver.url + "/hook")
    wait_until(lambda: unfinished() == 0, timeout=120, message="every callback to end final")

    assert receiver.max_in_flight == 3  # reached, never exceeded
    assert len(receiver.received) == 30
    assert set(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}


def test_a_hanging_host_does_not_hold_up_callbacks_to_a_healthy_one(api, service):
    limit = 10
    env = {
        "CALLBACKS_WORKER_PROCESSES": 2,
        "CALLBACKS_CONCURRENCY": 20,  # 40 threads in all: without the limit the hanging host takes them all
        "CALLBACKS_MAX_CONCURRENCY_PER_ORIGIN": limit,
        # The hanging host's sends are still in flight when the workers stop: shutdown is not under
        # test here (tests/e2e/test_shutdown.py), so they are not waited for the default 25 s.
        "CALLBACKS_SHUTDOWN_GRACE_SECONDS": 1,
    }
    service("dispatcher", ["run_dispatcher"], **env)
    service("workers", ["qcluster"], **env)
    with Receiver(Reply(hang=True)) as slow, Receiver() as fast:
        slow_ids = create_callbacks(
            api, 60, slow.url + "/hook", max_retries=0, timeout={"connect_seconds": 1, "total_seconds": 60}
        )
        slow.wait_for(limit, timeout=60)
        fast_ids = create_callbacks(api, 100, fast.url + "/hook")

        wait_until(
            lambda: CallbackTask.objects.filter(id__in=fast_ids, status=TaskStatus.SUCCEEDED).count() == 100,
            timeout=45,
            message="the healthy host's callbacks to be delivered",
        )

        # Delivered while the hanging host still holds its share, and no more than its share.
        assert slow.in_flight == limit and len(slow.received) == limit and slow.max_in_flight == limit
        assert not CallbackTask.objects.filter(id__in=slow_ids, status__in=FINAL_STATUSES).exists()
        assert len(fast.received) == 100 and fast.max_in_flight <= limit
