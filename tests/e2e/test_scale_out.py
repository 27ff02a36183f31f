"""Scale-out: two dispatchers and three django-q2 clusters as separate processes,
sharing PostgreSQL (or the SQLite file) and Redis as the broker."""

import os
import signal
import time
from collections import Counter

import pytest
import redis

from callbacks.models import CallbackTask, TaskExecution, TaskStatus
from tests.e2e.helpers import create_callbacks, unfinished
from tests.processes import wait_until
from tests.receivers import Reply

pytestmark = [pytest.mark.e2e]

REDIS_URL = "redis://127.0.0.1:6379/13"  # a database of its own, emptied first


@pytest.fixture
def redis_broker():
    connection = redis.Redis.from_url(REDIS_URL)
    connection.flushdb()
    yield {"REDIS_URL": REDIS_URL}
    connection.flushdb()


def test_two_dispatchers_three_clusters_no_callback_sent_twice_and_fast_takeover(
    api, receiver, service, redis_broker
):
    # One receiver origin: its slots go out as lanes of at most TASKS_PER_JOB, each to one cluster,
    # and are granted again every LANE_SECONDS, so every cluster gets lanes in turn.
    env = {
        **redis_broker,
        "CALLBACKS_STANDBY_POLL_SECONDS": 0.2,
        "CALLBACKS_TASKS_PER_JOB": 10,
        "CALLBACKS_MAX_CONCURRENCY_PER_ORIGIN": 30,
        "CALLBACKS_LANE_SECONDS": 0.2,
    }
    receiver.respond = Reply(delay=0.02)
    leader = service("dispatcher-1", ["run_dispatcher"], **env)
    wait_until(lambda: "is the leader" in leader.log(), timeout=30, message="a leader")
    standby = service("dispatcher-2", ["run_dispatcher"], **env)
    for n in range(3):
        service(f"cluster-{n}", ["qcluster"], CALLBACKS_WORKER_PROCESSES=1, **env)

    create_callbacks(api, 300, receiver.url)
    wait_until(lambda: unfinished() == 0, timeout=120, message="300 callbacks final")

    assert Counter(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED: 300}
    per_task = Counter(r.headers["x-callback-task-id"] for r in receiver.received)
    assert len(per_task) == 300 and max(per_task.values()) == 1  # none sent twice
    workers = set(TaskExecution.objects.values_list("worker", flat=True))
    assert len(workers) == 3  # every cluster took part
    assert "is the leader" not in standby.log()

    os.kill(leader.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_until(
        lambda: "is the leader" in standby.log(), timeout=10, interval=0.05, message="the standby to lead"
    )
    takeover = time.monotonic() - killed_at
    assert takeover < 5, f"standby took {takeover:.1f} s to take over"

    create_callbacks(api, 50, receiver.url)
    wait_until(lambda: unfinished() == 0, timeout=60, message="callbacks after the takeover")
    assert len({r.headers["x-callback-task-id"] for r in receiver.received}) == 350
