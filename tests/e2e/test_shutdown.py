"""Graceful shutdown with real processes: SIGTERM during deliveries."""

import time
from collections import Counter

import pytest

from callbacks.models import CallbackTask, TaskExecution, TaskStatus
from tests.e2e.helpers import create_callbacks, unfinished
from tests.processes import wait_until
from tests.receivers import Reply

pytestmark = [pytest.mark.e2e]

WORKERS = {"CALLBACKS_WORKER_PROCESSES": 1, "CALLBACKS_CONCURRENCY": 5, "CALLBACKS_TASKS_PER_JOB": 5}


def test_sigterm_finishes_callbacks_in_flight_and_gives_back_the_rest(api, receiver, service):
    receiver.respond = Reply(delay=1.5)
    dispatcher = service("dispatcher", ["run_dispatcher"])
    workers = service("workers", ["qcluster"], **WORKERS)
    create_callbacks(api, 40, receiver.url)
    receiver.wait_for(5, timeout=60)

    assert dispatcher.stop() == 0
    stopped_at = time.monotonic()
    assert workers.stop(timeout=30) == 0
    assert time.monotonic() - stopped_at < 30

    # Everything started was finished and recorded; nothing is left running or interrupted.
    assert not CallbackTask.objects.filter(status=TaskStatus.RUNNING).exists()
    assert not TaskExecution.objects.exclude(outcome="success").exists()
    started = TaskExecution.objects.count()
    assert started == len(receiver.received) >= 5
    assert CallbackTask.objects.filter(status=TaskStatus.SUCCEEDED).count() == started
    assert CallbackTask.objects.filter(status=TaskStatus.SCHEDULED, attempts=0).exists()  # given back

    # A new cluster delivers the rest; no callback is sent twice.
    service("dispatcher-again", ["run_dispatcher"], CALLBACKS_QUEUED_LEASE_SECONDS=2)
    service("workers-again", ["qcluster"], **WORKERS)
    wait_until(lambda: unfinished() == 0, timeout=120, message="the rest to be delivered")
    assert Counter(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED: 40}
    assert max(Counter(r.headers["x-callback-task-id"] for r in receiver.received).values()) == 1


def test_attempts_still_running_after_the_grace_period_are_recorded_as_interrupted(api, receiver, service):
    receiver.respond = Reply(hang=True)
    dispatcher = service("dispatcher", ["run_dispatcher"])
    workers = service("workers", ["qcluster"], CALLBACKS_SHUTDOWN_GRACE_SECONDS=1, **WORKERS)
    create_callbacks(api, 5, receiver.url, timeout={"connect_seconds": 1, "total_seconds": 60})
    receiver.wait_for(5, timeout=60)

    # Dispatcher first, as an operator stops the service: else it claims the retries again.
    assert dispatcher.stop() == 0
    assert workers.stop(timeout=30) == 0

    assert not CallbackTask.objects.filter(status=TaskStatus.RUNNING).exists()
    assert Counter(TaskExecution.objects.values_list("outcome", flat=True)) == {"interrupted": 5}
    assert Counter(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.RETRYING: 5}


def test_a_cluster_with_its_own_dispatcher_delivers_hands_over_the_lead_and_stops_gracefully(
    api, receiver, service
):
    """qcluster --dispatcher: the dispatcher runs in the cluster's main process; two such clusters
    share the queue and one dispatcher leads; SIGTERM to the leader's cluster stops it cleanly and
    the other's dispatcher takes over."""
    receiver.respond = Reply(delay=0.5)
    first = service("cluster-a", ["qcluster", "--dispatcher"], **WORKERS)
    create_callbacks(api, 20, receiver.url)
    receiver.wait_for(5, timeout=60)
    second = service("cluster-b", ["qcluster", "--dispatcher"], **WORKERS, CALLBACKS_STANDBY_POLL_SECONDS=0.2)

    assert first.stop(timeout=30) == 0
    create_callbacks(api, 20, receiver.url)  # only the second cluster's dispatcher can claim these

    wait_until(lambda: unfinished() == 0, timeout=120, message="every callback to be delivered")
    assert Counter(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED: 40}
    assert max(Counter(r.headers["x-callback-task-id"] for r in receiver.received).values()) == 1
    assert second.stop(timeout=30) == 0
