"""End to end: the per-origin limit is exact while its slots are reused at once (lanes), across several
worker processes, through a worker killed with SIGKILL and through a live change of the limit.

The receiver counts the requests it holds at once; its maximum must equal the limit, never more. That
slots are reused the moment a response is in, not after the attempt is recorded and claimed again,
shows in the status history: a task the leader claimed passes `queued`, a task a lane took by itself
goes from `scheduled` straight to `running`.
"""

import os
import signal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from rest_framework.test import APIClient

from callbacks.models import CallbackTask, Lane, TaskEvent, TaskExecution, TaskStatus
from tests.e2e.helpers import create_callbacks, unfinished, wait_for_cluster, worker_sending
from tests.processes import wait_until
from tests.receivers import Reply

pytestmark = [pytest.mark.e2e]


def claimed_by_the_leader() -> int:
    return TaskEvent.objects.filter(to_status=TaskStatus.QUEUED).count()


def lane_slots() -> int:
    """The slots of the live lanes: what the workers may have in flight, as they count their sends (a
    lane never narrows below its sends in flight)."""
    return Lane.objects.filter(expires_at__gt=timezone.now()).aggregate(slots=Sum("width"))["slots"] or 0


def test_the_limit_is_exact_across_worker_processes_and_slots_are_reused_at_once(api, receiver, service):
    limit, count = 24, 240
    receiver.respond = Reply(delay=0.3)  # long enough for every slot to be taken at once
    env = {"CALLBACKS_WORKER_PROCESSES": 3, "CALLBACKS_MAX_CONCURRENCY_PER_ORIGIN": limit}
    service("dispatcher", ["run_dispatcher"], **env)
    service("workers", ["qcluster"], **env)
    wait_for_cluster(processes=3)

    create_callbacks(api, count, receiver.url + "/hook")
    wait_until(lambda: unfinished() == 0, timeout=120, message="every callback to end final")

    assert receiver.max_in_flight == limit  # reached, never exceeded
    assert len(receiver.received) == count
    assert set(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}
    assert len(set(TaskExecution.objects.values_list("worker", flat=True))) >= 2  # the lanes spread
    # Handing back a slot through the leader would pass every task through `queued`; most went from
    # `scheduled` to `running` in a lane that had just had a response.
    assert claimed_by_the_leader() < count / 4


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="a creation's NOTIFY wakes a lingering lane only on PostgreSQL"
)
def test_a_steady_stream_to_one_receiver_is_started_by_its_lingering_lane_not_the_leader(
    api, receiver, service
):
    """Callbacks created one at a time, each once the one before was received: the lane runs dry
    between two. Its one slot is the origin's whole limit, so the leader cannot claim the next one; the
    lane, woken by the creation's NOTIFY naming its origin, starts it itself."""
    count = 20
    env = {
        "CALLBACKS_WORKER_PROCESSES": 2,
        "CALLBACKS_MAX_CONCURRENCY_PER_ORIGIN": 1,
        "CALLBACKS_LANE_SECONDS": 120,  # one lane for the whole stream, however slow the machine
    }
    service("dispatcher", ["run_dispatcher"], **env)
    service("workers", ["qcluster"], **env)

    for sent in range(1, count + 1):
        create_callbacks(api, 1, receiver.url + "/hook")
        receiver.wait_for(sent, timeout=30)
    wait_until(lambda: unfinished() == 0, timeout=30, message="every callback to end final")

    assert receiver.max_in_flight == 1
    assert set(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}
    # The first went through the leader; without lingering every one would have.
    assert claimed_by_the_leader() <= 2


def test_a_killed_workers_slots_come_back_and_the_limit_holds(api, receiver, service):
    limit = 6
    receiver.respond = Reply(delay=0.05)
    env = {
        "CALLBACKS_WORKER_PROCESSES": 2,
        "CALLBACKS_MAX_CONCURRENCY_PER_ORIGIN": limit,
        "CALLBACKS_LANE_LEASE_SECONDS": 2,
        "CALLBACKS_RUNNING_LEASE_MARGIN_SECONDS": 1,
        "CALLBACKS_HEARTBEAT_SECONDS": 0.2,
    }
    service("dispatcher", ["run_dispatcher"], **env)
    workers = service("workers", ["qcluster"], **env)
    timeout = {"connect_seconds": 1, "total_seconds": 2}  # the killed attempts' leases run out soon
    create_callbacks(api, 400, receiver.url + "/hook", max_retries=5, timeout=timeout)

    receiver.wait_for(60, timeout=60)
    os.kill(
        wait_until(
            lambda: worker_sending(workers, at_least=1),
            timeout=30,
            message="a worker with callbacks in flight",
        ),
        signal.SIGKILL,
    )

    wait_until(lambda: unfinished() == 0, timeout=180, message="every callback to end final after the kill")
    assert receiver.max_in_flight == limit
    assert set(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}
    received = {r.headers["x-callback-task-id"] for r in receiver.received}
    assert received == {str(task_id) for task_id in CallbackTask.objects.values_list("id", flat=True)}


def test_a_lowered_limit_holds_from_the_moment_the_sends_under_the_old_one_have_ended(api, receiver, service):
    before, after = 8, 3
    receiver.respond = Reply(delay=0.05)
    env = {"CALLBACKS_WORKER_PROCESSES": 2, "CALLBACKS_MAX_CONCURRENCY_PER_ORIGIN": before}
    service("dispatcher", ["run_dispatcher"], **env)
    service("workers", ["qcluster"], **env)
    create_callbacks(api, 600, receiver.url + "/hook")
    wait_until(lambda: receiver.in_flight >= before - 1, timeout=60, message="the old limit in use")

    operator = APIClient()
    operator.force_authenticate(get_user_model().objects.create_superuser("ops", "ops@example.com", "pw"))
    response = operator.patch("/api/v1/settings/", {"MAX_CONCURRENCY_PER_ORIGIN": after}, format="json")
    assert response.status_code == 200

    # What was sent under the old limit finishes; from then on the new one holds, and is used. The
    # workers' count, not only the receiver's: a send a worker has started may not have reached the
    # receiver yet (a busy machine), so the receiver alone can dip to the new limit too early.
    wait_until(
        lambda: lane_slots() <= after and receiver.in_flight <= after,
        timeout=30,
        message="the sends under the old limit to end",
    )
    receiver.max_in_flight = 0
    delivered_then = len(receiver.received)
    if unfinished() < 200:  # most were sent before the old sends had ended (a busy machine): more
        create_callbacks(api, 300, receiver.url + "/hook")
    wait_until(lambda: unfinished() == 0, timeout=180, message="every callback to end final")
    assert len(receiver.received) - delivered_then > 100
    assert receiver.max_in_flight == after
    assert set(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}


def test_a_rate_limit_holds_while_its_lane_refills(api, receiver, service):
    rate, count = 20, 120
    env = {"CALLBACKS_WORKER_PROCESSES": 2, "CALLBACKS_RATE_LIMIT_PER_ORIGIN": rate}
    service("dispatcher", ["run_dispatcher"], **env)
    service("workers", ["qcluster"], **env)
    # The workers up first: one still starting (slow on a busy machine) takes its first lane late.
    wait_for_cluster()

    create_callbacks(api, count, receiver.url + "/hook")
    wait_until(lambda: unfinished() == 0, timeout=120, message="every callback to end final")

    assert len(receiver.received) == count
    # A bucket holds one second's worth: no second sees more sends started than that burst plus the
    # rate, give or take a tenth. Counted when the workers started them (each attempt's started_at),
    # not when this process's receiver threads read them: on a busy machine those reads bunch up.
    starts = sorted(at.timestamp() for at in TaskExecution.objects.values_list("started_at", flat=True))
    assert len(starts) == count
    busiest = max(sum(1 for t in starts[i:] if t < start + 1.0) for i, start in enumerate(starts))
    assert busiest <= 2 * rate + rate // 10
    assert claimed_by_the_leader() < count / 2  # the paced lane took most of them itself
