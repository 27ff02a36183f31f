"""End to end: no tenant stops delivery for another, with real run_dispatcher and qcluster processes.

- A flood of urgent callbacks into a queue no cluster serves: another tenant's callbacks are still
  delivered promptly (the flood is not claimed, so it takes no slot and no budget), /readyz keeps the
  API in its load balancer and /readyz/delivery names the queue. A queue nobody declared is refused.
- Callbacks with a 0.1 s timeout to a receiver shared with another tenant: the other tenant's
  callbacks are not held by a breaker they opened.
- A flood of every-second schedules: refused beyond the quota and the shortest interval, and another
  tenant's schedule fires every time, on time.
"""

import time
from collections import Counter
from datetime import datetime, timedelta

import pytest

from callbacks.models import (
    AuditLog,
    BreakerState,
    CallbackSchedule,
    CallbackTask,
    CircuitBreaker,
    TaskExecution,
    TaskStatus,
)
from callbacks.services.queues import queue_create
from tests.e2e.helpers import create_callbacks, wait_for_cluster
from tests.processes import wait_until
from tests.receivers import Receiver, Reply

pytestmark = [pytest.mark.e2e]


def statuses(ids) -> set:
    return set(CallbackTask.objects.filter(id__in=ids).values_list("status", flat=True))


def test_a_flood_into_a_queue_no_cluster_serves_holds_no_one_elses_callbacks(api, other_api, client, service):
    queue_create(name="nowhere", actor_type="user", actor="test")  # declared, and no cluster serves it
    # A small budget and a lifted origin limit: claimed, the flood alone would fill the budget.
    env = {"CALLBACKS_DISPATCH_MAX_OUTSTANDING": 50, "CALLBACKS_MAX_CONCURRENCY_PER_ORIGIN": 1000}
    service("dispatcher", ["run_dispatcher"], **env)
    service("workers", ["qcluster"], CALLBACKS_HEARTBEAT_SECONDS=0.5, **env)
    wait_for_cluster()
    with Receiver() as flooded, Receiver() as theirs:
        flood = create_callbacks(api, 500, flooded.url, queue="nowhere", priority=9)
        started = time.monotonic()
        mine = create_callbacks(other_api, 100, theirs.url, priority=0)

        theirs.wait_for(100, timeout=60)
        print(
            f"\nthe other tenant's 100 callbacks delivered {time.monotonic() - started:.2f} s after registration"
        )
        wait_until(lambda: statuses(mine) == {TaskStatus.SUCCEEDED}, timeout=60, message="theirs recorded")
        assert statuses(flood) == {TaskStatus.SCHEDULED}  # waiting, due, in the database: nothing lost
        assert not flooded.received

    assert client.get("/readyz").status_code == 200  # the API stays in its load balancer
    delivery = client.get("/readyz/delivery")
    assert delivery.status_code == 503
    assert delivery.json()["checks"]["queues"]["failing"]["nowhere"]["reason"] == "no live cluster serves it"
    refused = api.post(
        "/api/v1/callbacks/", {"url": "http://127.0.0.1:9/", "queue": "never-declared"}, format="json"
    )
    assert refused.status_code == 400 and set(refused.json()["error"]["fields"]) == {"queue"}


def test_one_tenants_tiny_timeouts_do_not_hold_anothers_callbacks_to_a_shared_receiver(
    api, other_api, receiver, service
):
    # The shared receiver is healthy: it answers in 0.3 s, which a 0.1 s timeout never waits for.
    receiver.respond = lambda request: Reply(delay=0.3)
    env = {"CALLBACKS_BREAKER_FAILURE_THRESHOLD": 3, "CALLBACKS_BREAKER_OPEN_SECONDS": 30}
    service("dispatcher", ["run_dispatcher"], **env)
    service("workers", ["qcluster"], **env)
    create_callbacks(
        api,
        30,
        receiver.url + "/attacker",
        priority=9,
        timeout={"connect_seconds": 0.1, "total_seconds": 0.1},
        max_retries=20,
        backoff={"initial_seconds": 0.2, "max_seconds": 1},
    )
    wait_until(
        lambda: TaskExecution.objects.filter(outcome="timeout").count() >= 5,
        timeout=60,
        message="the attacker's callbacks timing out and retrying",
    )
    started = time.monotonic()
    mine = create_callbacks(other_api, 20, receiver.url + "/victim", priority=0)

    wait_until(
        lambda: statuses(mine) == {TaskStatus.SUCCEEDED},
        timeout=60,
        message="the other tenant's callbacks delivered while the attacker's time out",
    )
    print(
        f"\nthe other tenant's 20 callbacks delivered {time.monotonic() - started:.2f} s after registration"
    )
    assert not CircuitBreaker.objects.exclude(state=BreakerState.CLOSED).exists()


def post_schedule(api, name: str, cron: str, url: str):
    return api.post(
        "/api/v1/schedules/", {"name": name, "cron": cron, "task_template": {"url": url}}, format="json"
    )


def test_a_flood_of_schedules_is_refused_and_another_tenants_schedule_fires_every_time_on_time(
    api, tenant, other_api, service, settings
):
    # The limits are checked by the API in this process, scaled down so the other tenant's schedule
    # shows several fires within the test: 4 schedules at least 2 s apart allow the flooder the fire
    # rate the shipped 100 schedules at least 60 s apart do (about 2 a second). The test settings
    # lower the interval to 1 s for older tests.
    settings.CALLBACKS = {**settings.CALLBACKS, "SCHEDULES_PER_TENANT": 4, "SCHEDULE_MIN_INTERVAL_SECONDS": 2}
    service("dispatcher", ["run_dispatcher"])
    service("workers", ["qcluster"])
    wait_for_cluster()
    with Receiver() as flooded, Receiver() as theirs:
        # 25 times the quota of each: past the quota every request takes the same refusal, so more
        # requests would only take longer.
        flood = [post_schedule(api, f"each-{n}", "* * * * * *", flooded.url) for n in range(100)]
        flood += [post_schedule(api, f"flood-{n}", "*/2 * * * * *", flooded.url) for n in range(100)]
        refused = Counter(
            (response.status_code, *sorted(response.json()["error"]["fields"]))
            for response in flood
            if response.status_code != 201
        )
        assert refused == {(400, "cron"): 100, (400, "schedules"): 96}
        assert CallbackSchedule.objects.filter(tenant=tenant).count() == 4

        created = post_schedule(other_api, "theirs", "*/2 * * * * *", theirs.url + "/tick")
        assert created.status_code == 201, created.content
        schedule = created.json()
        first_fire = datetime.fromisoformat(schedule["next_fire_at"].replace("Z", "+00:00"))
        theirs.wait_for(6, timeout=60)  # ~11 s of fires beside the flooder's

    fires = list(
        CallbackTask.objects.filter(schedule_id=schedule["id"])
        .order_by("run_at")
        .values_list("run_at", "created_at")
    )
    # Every fire, none skipped, each made on time (a leader behind on a flood's fires makes them late,
    # then, past the misfire grace, skips them as missed).
    assert [run_at for run_at, _created in fires] == [
        first_fire + timedelta(seconds=2 * n) for n in range(len(fires))
    ]
    late = [
        (run_at, created_at) for run_at, created_at in fires if created_at - run_at > timedelta(seconds=1.5)
    ]
    assert not late, f"fires made more than 1.5 s after their time: {late}"
    assert not AuditLog.objects.filter(action="schedule.missed", object_id=schedule["id"]).exists()
