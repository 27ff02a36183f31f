"""End to end: processes killed with SIGKILL. A killed worker's callbacks come back within seconds,
never while a live worker is still sending them, and a killed qcluster main process takes its
sentinel and workers with it.

The recovery times are printed (pytest -s shows them): they are what the report gives.
"""

import os
import signal
import time
from collections import Counter

import pytest

from callbacks.models import CallbackTask, TaskExecution, TaskStatus
from tests.e2e.helpers import create_callbacks, unfinished, worker_sending
from tests.processes import descendants, running, thread_count, wait_until
from tests.receivers import Reply

pytestmark = [pytest.mark.e2e]

# What the service promises: a killed worker's running callbacks are due again within this.
BACK_WITHIN_SECONDS = 10


def test_a_killed_workers_running_callbacks_are_back_within_seconds(api, receiver, service):
    # Attempts that last: with the lease as long as the attempt's total timeout, they would stay
    # `running` for a minute and a half after their worker died.
    receiver.respond = Reply(hang=True)
    service("dispatcher", ["run_dispatcher"])
    # The retries hang too, and are still in flight when the workers stop: shutdown is not under test
    # here (tests/e2e/test_shutdown.py), so they are not waited for the default 25 s.
    workers = service(
        "workers",
        ["qcluster"],
        CALLBACKS_WORKER_PROCESSES=1,
        CALLBACKS_HEARTBEAT_SECONDS=0.2,
        CALLBACKS_SHUTDOWN_GRACE_SECONDS=1,
    )
    create_callbacks(api, 5, receiver.url, timeout={"connect_seconds": 1, "total_seconds": 60}, max_retries=3)
    pid = wait_until(
        lambda: worker_sending(workers, at_least=5), timeout=60, message="the worker sending all five"
    )
    running = set(CallbackTask.objects.filter(status=TaskStatus.RUNNING).values_list("id", flat=True))
    assert len(running) == 5

    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_until(
        lambda: (
            not CallbackTask.objects.filter(id__in=running, status=TaskStatus.RUNNING, attempts=1).exists()
        ),
        timeout=BACK_WITHIN_SECONDS,
        interval=0.05,
        message=f"the killed worker's callbacks to come back within {BACK_WITHIN_SECONDS} s",
    )
    print(f"\nworker kill -9: its running callbacks back after {time.monotonic() - killed_at:.2f} s")
    interrupted = TaskExecution.objects.filter(task_id__in=running, attempt=1, outcome="interrupted")
    assert interrupted.count() == 5


def test_a_live_worker_keeps_its_callbacks_past_the_short_lease(api, receiver, service):
    """Attempts longer than the running lease: the worker renews it, so none is taken back and
    sent again by another worker while the first is still sending it."""
    receiver.respond = Reply(delay=5)
    service("dispatcher", ["run_dispatcher"])
    service("workers", ["qcluster"], CALLBACKS_WORKER_PROCESSES=2, CALLBACKS_RUNNING_LEASE_SECONDS=2)
    ids = create_callbacks(api, 10, receiver.url, timeout={"connect_seconds": 1, "total_seconds": 30})
    wait_until(lambda: unfinished() == 0, timeout=120, message="all callbacks final")
    assert Counter(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED: 10}
    per_task = Counter(item.headers["x-callback-task-id"] for item in receiver.received)
    assert per_task == {task_id: 1 for task_id in ids}
    assert not TaskExecution.objects.filter(outcome="interrupted").exists()


def test_killing_the_qcluster_main_process_stops_its_sentinel_and_workers(api, receiver, service):
    receiver.respond = Reply(delay=0.5)
    # Batches the dead cluster had taken from the broker but not started come back by their
    # queued lease (the broker's loss, not this test's subject): short here.
    service("dispatcher", ["run_dispatcher"], CALLBACKS_QUEUED_LEASE_SECONDS=3)
    first = service("workers-1", ["qcluster"], CALLBACKS_WORKER_PROCESSES=2, CALLBACKS_HEARTBEAT_SECONDS=0.2)
    # The sentinel, the pusher, the monitor and two delivery workers (those with threads of their own).
    children = wait_until(
        lambda: (
            (found := descendants(first.pid))
            and len([pid for pid in found if thread_count(pid) >= 2]) == 2
            and found
        ),
        timeout=60,
        message="the cluster's workers up",
    )
    create_callbacks(api, 40, receiver.url, max_retries=5)
    wait_until(lambda: worker_sending(first, at_least=1), timeout=60, message="the cluster delivering")

    os.kill(first.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    try:
        wait_until(
            lambda: not any(running(pid) for pid in children),
            timeout=BACK_WITHIN_SECONDS,
            interval=0.05,
            message="the cluster's children to stop with its main process",
        )
        print(
            f"\nqcluster main kill -9: its {len(children)} children gone after {time.monotonic() - killed_at:.2f} s"
        )
    finally:
        for pid in children:  # orphans would go on delivering into the tests that follow
            if running(pid):
                os.kill(pid, signal.SIGKILL)

    # What the dead cluster had under way comes back and a new cluster (a supervisor's restart)
    # delivers it all.
    service("workers-2", ["qcluster"], CALLBACKS_WORKER_PROCESSES=2)
    wait_until(lambda: unfinished() == 0, timeout=120, message="all callbacks final after the restart")
    assert Counter(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED: 40}
