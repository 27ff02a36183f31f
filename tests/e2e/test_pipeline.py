"""End to end: the API, real run_dispatcher and qcluster processes, a real receiver.

Nothing here is mocked: callbacks go from the API through the database, the dispatcher,
the django-q2 broker and worker processes to an HTTP server on 127.0.0.1.
"""

import os
import signal
from collections import Counter

import pytest

from callbacks.models import CallbackTask, TaskExecution, TaskStatus
from tests.e2e.helpers import create_callbacks, unfinished, worker_sending
from tests.processes import descendants, thread_count, wait_until
from tests.receivers import Reply

pytestmark = [pytest.mark.e2e]


def fails_first_attempt(task_id: str) -> bool:
    return int(task_id.replace("-", "")[-1], 16) % 4 == 0


def test_500_callbacks_end_final_with_none_lost_and_no_attempt_sent_twice(api, receiver, service):
    def respond(request):
        first = request.headers["x-callback-attempt"] == "1"
        return (
            Reply(status=503)
            if first and fails_first_attempt(request.headers["x-callback-task-id"])
            else Reply()
        )

    receiver.respond = respond
    # A receiver failing a quarter of first attempts would (rightly) open its circuit breaker;
    # this test is about the pipeline, so the breaker is kept out of the way.
    service("dispatcher", ["run_dispatcher"], CALLBACKS_BREAKER_FAILURE_THRESHOLD=1000)
    service("workers", ["qcluster"], CALLBACKS_BREAKER_FAILURE_THRESHOLD=1000)

    ids = create_callbacks(api, 500, receiver.url + "/hook", max_retries=3, backoff={"initial_seconds": 0.2})
    wait_until(lambda: unfinished() == 0, timeout=180, message="all 500 callbacks to end final")

    assert Counter(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED: 500}
    failing = sum(fails_first_attempt(task_id) for task_id in ids)
    assert failing > 50  # the receiver really did fail some at first
    sent = Counter(
        (r.headers["x-callback-task-id"], r.headers["x-callback-attempt"]) for r in receiver.received
    )
    per_task = Counter(task_id for task_id, _attempt in sent)
    odd = {
        task_id: list(
            TaskExecution.objects.filter(task_id=task_id).values_list(
                "attempt", "outcome", "status_code", "error"
            )
        )
        for task_id in ids
        if per_task[task_id] != (2 if fails_first_attempt(task_id) else 1)
    }
    assert not odd, f"tasks received an unexpected number of times: {odd}"
    assert sum(sent.values()) == 500 + failing
    assert max(sent.values()) == 1  # no attempt sent twice
    unexpected = list(
        TaskExecution.objects.exclude(outcome__in=["success", "http_5xx"]).values_list(
            "attempt", "outcome", "error"
        )
    )
    assert not unexpected, f"attempts that did not reach the receiver: {unexpected}"
    assert TaskExecution.objects.count() == 500 + failing
    assert TaskExecution.objects.filter(outcome="http_5xx").count() == failing


def test_killing_a_worker_mid_delivery_loses_nothing(api, receiver, service):
    receiver.respond = Reply(delay=0.5)
    service("dispatcher", ["run_dispatcher"], CALLBACKS_QUEUED_LEASE_SECONDS=3)
    workers = service(
        "workers",
        ["qcluster"],
        CALLBACKS_CONCURRENCY=20,
        CALLBACKS_RUNNING_LEASE_MARGIN_SECONDS=1,
        CALLBACKS_HEARTBEAT_SECONDS=0.2,
    )

    create_callbacks(
        api, 200, receiver.url, timeout={"connect_seconds": 1, "total_seconds": 2}, max_retries=5
    )
    receiver.wait_for(30, timeout=60)

    os.kill(
        wait_until(
            lambda: worker_sending(workers, at_least=5),
            timeout=30,
            message="a worker with callbacks in flight",
        ),
        signal.SIGKILL,
    )

    wait_until(lambda: unfinished() == 0, timeout=180, message="all callbacks to end final after the kill")
    assert Counter(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED: 200}
    # The record shows what happened: attempts cut short by the kill, then sent again.
    assert TaskExecution.objects.filter(outcome="interrupted").exists()
    received_ids = {r.headers["x-callback-task-id"] for r in receiver.received}
    assert received_ids == {str(task_id) for task_id in CallbackTask.objects.values_list("id", flat=True)}


def test_standby_dispatcher_takes_over_when_the_leader_dies(api, receiver, service):
    first = service("dispatcher-1", ["run_dispatcher"], CALLBACKS_STANDBY_POLL_SECONDS=0.2)
    wait_until(lambda: "is the leader" in first.log(), timeout=30, message="the first dispatcher to lead")
    second = service("dispatcher-2", ["run_dispatcher"], CALLBACKS_STANDBY_POLL_SECONDS=0.2)
    service("workers", ["qcluster"])

    create_callbacks(api, 5, receiver.url)
    receiver.wait_for(5, timeout=60)
    assert "is the leader" not in second.log()

    first.kill_group()
    wait_until(lambda: "is the leader" in second.log(), timeout=30, message="the standby to take over")
    create_callbacks(api, 5, receiver.url)
    receiver.wait_for(10, timeout=60)
    wait_until(lambda: unfinished() == 0, timeout=60, message="all callbacks final")


def test_a_cluster_keeps_delivering_after_its_idle_workers_are_killed(api, receiver, service):
    """An idle django-q2 worker waits on the task queue; killed there, it must not take the queue's
    lock with it (callbacks.delivery.crashsafe_queue), or the whole cluster would stall."""
    service("dispatcher", ["run_dispatcher"])
    workers = service("workers", ["qcluster"], CALLBACKS_WORKER_PROCESSES=2)
    # Delivery workers are the cluster's processes with threads of their own (the recorder).
    idle = wait_until(
        lambda: (
            (found := [pid for pid in descendants(workers.pid) if thread_count(pid) >= 2])
            and len(found) == 2
            and found
        ),
        timeout=30,
        message="two idle delivery workers",
    )
    for pid in idle:
        os.kill(pid, signal.SIGKILL)

    create_callbacks(api, 20, receiver.url)
    receiver.wait_for(20, timeout=60)
    wait_until(lambda: unfinished() == 0, timeout=60, message="all callbacks final")
    assert workers.stop(timeout=30) == 0
