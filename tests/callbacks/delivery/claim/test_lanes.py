"""Lanes (callbacks/delivery/claim/lanes.py): the leader grants slots, the worker holding them refills
within them and only ever narrows them."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from callbacks.delivery.claim import candidates, lanes, leases
from callbacks.models import (
    BreakerState,
    CallbackTask,
    CircuitBreaker,
    Lane,
    QueueState,
    RuntimeSetting,
    TaskEvent,
    TaskStatus,
)
from tests.callbacks.delivery.attempts import A, B, claim
from tests.factories import make_task, make_tasks, past

pytestmark = pytest.mark.django_db


def the_lane(claimed) -> Lane:
    (token,) = {token for _task_id, token in claimed}
    return Lane.objects.get(token=token)


def refill(lane, *, want, in_flight, taking=True, now=None, keep=0):
    return lanes.refill(
        token=lane.token, want=want, in_flight=in_flight, taking=taking, now=now or timezone.now(), keep=keep
    )


def test_a_claim_grants_a_slot_per_task_and_the_limit_counts_slots(tenant, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=4)
    make_tasks(10, tenant=tenant, url=A, run_at=past(1))

    lane = the_lane(claim())

    assert (lane.width, lane.origin, lane.tenant_id, lane.refills) == (
        4,
        "http://127.0.0.1:9001",
        tenant.id,
        True,
    )
    assert claim() == []  # four slots granted: none left, whatever the tasks' state


def test_a_refill_starts_due_tasks_within_the_width_and_records_their_history(tenant, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=4)
    make_tasks(10, tenant=tenant, url=A, run_at=past(1))
    lane = the_lane(claim())

    got = refill(lane, want=10, in_flight=1)  # one of the four still out: three may start

    assert (len(got.tasks), got.width) == (3, 4)
    started = CallbackTask.objects.filter(id__in=[task.id for task in got.tasks])
    assert set(started.values_list("status", "locked_by", "attempts")) == {
        (TaskStatus.RUNNING, lane.token, 1)
    }
    assert {task.tenant_id for task in got.tasks} == {tenant.id}
    events = TaskEvent.objects.filter(task_id__in=[task.id for task in got.tasks])
    assert set(events.values_list("from_status", "to_status", "note")) == {
        (TaskStatus.SCHEDULED, TaskStatus.RUNNING, "attempt 1")
    }


def test_a_refill_takes_only_its_own_key_in_claim_order(tenant, other_api):
    make_task(tenant=tenant, url=A, run_at=past(100))
    lane = the_lane(claim())  # one slot of (default, A, tenant)
    low = make_task(tenant=tenant, url=A, priority=0, run_at=past(90))
    high = make_task(tenant=tenant, url=A, priority=9, run_at=past(10))
    make_task(tenant=tenant, url=B, run_at=past(200))  # another origin
    make_task(tenant=other_api.tenant, url=A, run_at=past(200))  # another tenant
    make_task(tenant=tenant, url=A, queue="other", run_at=past(200))  # another queue
    make_task(tenant=tenant, url=A, ordering_key="k", run_at=past(200))  # keyed: the leader's alone
    make_task(tenant=tenant, url=A, run_at=timezone.now() + timedelta(hours=1))  # not due

    assert [task.id for task in refill(lane, want=1, in_flight=0).tasks] == [high.id]
    assert [task.id for task in refill(lane, want=1, in_flight=0).tasks] == [low.id]
    assert refill(lane, want=1, in_flight=0).tasks == []


def test_a_dry_refill_narrows_the_lane_and_an_empty_one_ends(tenant, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=4)
    make_tasks(5, tenant=tenant, url=A, run_at=past(1))
    lane = the_lane(claim())

    got = refill(lane, want=4, in_flight=2)  # one left to take; two of the first four still out

    assert (len(got.tasks), got.width) == (1, 3)
    assert Lane.objects.get(token=lane.token).width == 3
    assert len(claim()) == 0  # 4 tasks (of 5) claimed or started; nothing due is left
    assert refill(lane, want=1, in_flight=0).width == 0
    assert not Lane.objects.filter(token=lane.token).exists()


def test_a_dry_refill_that_may_linger_keeps_the_lanes_slots_and_says_when_its_key_is_due_next(
    tenant, callbacks_settings
):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=2, LANE_LINGER_SECONDS=1.0)
    make_tasks(2, tenant=tenant, url=A, run_at=past(1))
    lane = the_lane(claim())  # both slots of the origin
    now = timezone.now()
    soon = make_task(tenant=tenant, url=A, run_at=now + timedelta(milliseconds=400))
    make_task(tenant=tenant, url=A, run_at=now + timedelta(seconds=5))  # past the linger

    got = refill(lane, want=2, in_flight=0, now=now, keep=2)

    assert (got.tasks, got.width) == ([], 2)
    assert Lane.objects.get(token=lane.token).width == 2
    assert got.next_due == soon.next_attempt_at
    assert claim(now=soon.next_attempt_at) == []  # the slots are still the lane's: the leader has none
    later = refill(lane, want=2, in_flight=0, now=soon.next_attempt_at, keep=2)
    assert [task.id for task in later.tasks] == [soon.id] and later.width == 2
    assert refill(lane, want=2, in_flight=1).width == 1  # without keep: narrowed as before


def test_a_lane_does_not_linger_while_another_keys_task_waits_for_its_origin(
    tenant, other_api, callbacks_settings
):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=2)
    make_tasks(2, tenant=tenant, url=A, run_at=past(1))
    lane = the_lane(claim())  # every slot of the origin
    waiting = make_task(tenant=other_api.tenant, url=A, run_at=past(1))

    got = refill(lane, want=2, in_flight=0, keep=2)

    assert (got.tasks, got.width, got.next_due) == ([], 0, None)
    assert [task_id for task_id, _token in claim()] == [waiting.id]


def test_a_lane_does_not_linger_once_the_leader_has_granted_its_whole_budget(tenant, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=4, DISPATCH_MAX_OUTSTANDING=4)
    make_tasks(2, tenant=tenant, url=A, run_at=past(1))
    make_tasks(2, tenant=tenant, url=B, run_at=past(1))
    first, second = (Lane.objects.get(token=token) for token in sorted({token for _id, token in claim()}))

    assert refill(first, want=2, in_flight=0, keep=2).width == 0  # 4 of 4 granted: it gives its 2 back
    assert refill(second, want=2, in_flight=0, keep=2).width == 2  # 2 of 4 now: it may linger


@pytest.mark.parametrize("hold", ["breaker", "paused", "lowered"])
def test_a_lingering_lane_keeps_no_more_than_the_limits_in_force_leave_it(tenant, callbacks_settings, hold):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=4)
    make_tasks(4, tenant=tenant, url=A, run_at=past(1))
    lane = the_lane(claim())
    if hold == "lowered":
        lower_the_setting()
    else:
        hold_back(lane, hold)

    got = refill(lane, want=4, in_flight=1, keep=4)

    assert got.tasks == []
    assert got.width == {"breaker": 1, "paused": 1, "lowered": 3}[hold]


def test_a_lane_never_widens_and_gives_back_when_its_time_is_up(tenant, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=3)
    make_tasks(20, tenant=tenant, url=A, run_at=past(1))
    lane = the_lane(claim())

    assert (len(refill(lane, want=10, in_flight=0).tasks), Lane.objects.get(token=lane.token).width) == (3, 3)
    got = refill(lane, want=3, in_flight=1, taking=False)
    assert (got.tasks, got.width) == ([], 1)  # what is still out, no more
    assert len(claim()) == 2  # the two slots given back are the leader's to grant again


def test_a_claim_keeps_the_slots_of_tasks_a_lane_of_their_key_started_meanwhile(
    tenant, callbacks_settings, monkeypatch
):
    """The leader reads its candidates unlocked and locks them after; a lane of the same key refilling
    in between starts the same first due tasks. Granted as lanes of their own, the slots left would
    split the origin's limit into lanes of a slot or two."""
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=2)
    make_tasks(20, tenant=tenant, url=A, run_at=past(1))
    running = the_lane(claim())
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=6)  # room for four more slots
    lock = candidates.still_claimable
    started = []

    def refilled_in_between(ids, *, now):
        started.extend(refill(running, want=2, in_flight=0).tasks)
        return lock(ids, now=now)

    monkeypatch.setattr(candidates, "still_claimable", refilled_in_between)
    claimed = claim()

    assert (
        len(started) == 2 and set(task.id for task in started) & {task_id for task_id, _ in claimed} == set()
    )
    lane = the_lane(claimed)
    assert (len(claimed), lane.width) == (2, 4)  # two tasks, and the slots of the two it lost
    assert sum(Lane.objects.values_list("width", flat=True)) == 6  # the limit, no more
    monkeypatch.setattr(candidates, "still_claimable", lock)
    assert len(refill(lane, want=2, in_flight=2).tasks) == 2  # the lane fills them itself


def hold_back(lane, hold):
    """What stops a lane's refills: its origin's breaker open, or its queue paused."""
    if hold == "breaker":
        CircuitBreaker.objects.create(origin=lane.origin, state=BreakerState.OPEN)
    else:
        QueueState.objects.create(name="default", paused=True)


def lower_the_setting():
    RuntimeSetting.objects.create(key="MAX_CONCURRENCY_PER_ORIGIN", value=3)


def slow_the_origin_down():
    CircuitBreaker.objects.create(origin="http://127.0.0.1:9001", concurrency_limit=3)


@pytest.mark.parametrize("lower", [lower_the_setting, slow_the_origin_down], ids=["setting", "slowed_down"])
def test_a_lowered_limit_is_taken_up_at_the_next_refill_without_waiting_for_the_settings_cache(
    tenant, callbacks_settings, lower
):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=8)
    make_tasks(30, tenant=tenant, url=A, run_at=past(1))
    lane = the_lane(claim())
    lower()

    assert lanes._allowed(lane, now=timezone.now()) == 3  # the ORM's form of the refill agrees
    got = refill(lane, want=8, in_flight=5)  # five out, above the new limit: nothing may start
    assert (got.tasks, got.width) == ([], 5)
    got = refill(lane, want=8, in_flight=1)
    assert (len(got.tasks), got.width) == (2, 3)
    assert claim() == []  # the leader reads the new limit too


def test_a_tenant_share_limits_the_refill_beside_the_tenants_other_lanes(tenant, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=16, WORKER_PROCESSES=2)
    make_tasks(40, tenant=tenant, url=A, run_at=past(1))
    first, second = sorted({token for _id, token in claim()})
    assert Lane.objects.get(token=first).width == Lane.objects.get(token=second).width == 8
    tenant.max_concurrency_per_origin = 10
    tenant.save()

    got = lanes.refill(token=first, want=8, in_flight=0, taking=True, now=timezone.now())
    assert (len(got.tasks), got.width) == (2, 2)  # 10 for the tenant, 8 of them the other lane's


@pytest.mark.parametrize("hold", ["breaker", "paused"])
def test_an_open_breaker_or_a_paused_queue_stops_refills(tenant, callbacks_settings, hold):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=2)
    make_tasks(10, tenant=tenant, url=A, run_at=past(1))
    lane = the_lane(claim())
    hold_back(lane, hold)

    got = refill(lane, want=2, in_flight=0)

    assert (got.tasks, got.width) == ([], 0)


def test_an_expired_lane_takes_nothing_and_counts_no_more(tenant, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=2, LANE_LEASE_SECONDS=5)
    make_tasks(10, tenant=tenant, url=A, run_at=past(1))
    lane = the_lane(claim())
    lanes.renew([lane.token], now=timezone.now())
    later = timezone.now() + timedelta(seconds=6)

    assert refill(lane, want=2, in_flight=0, now=later).width == 0
    assert leases.claim_due(limit=10, now=later)  # its slots are the leader's again


def test_a_probe_is_a_lane_of_one_that_does_not_refill(tenant, callbacks_settings):
    make_tasks(5, tenant=tenant, url=A, run_at=past(1))
    CircuitBreaker.objects.create(
        origin="http://127.0.0.1:9001", state=BreakerState.OPEN, next_probe_at=past(1)
    )

    lane = the_lane(claim())

    assert (lane.width, lane.refills) == (1, False)
    assert refill(lane, want=1, in_flight=0).tasks == []


def test_lanes_split_a_large_grant_over_the_worker_processes():
    rows = list(range(20))
    assert [len(part) for part in lanes.split(rows, spread=2, most=100)] == [10, 10]
    assert [len(part) for part in lanes.split(rows[:5], spread=2, most=100)] == [5]  # too few to spread
    assert [len(part) for part in lanes.split(rows, spread=1, most=8)] == [7, 7, 6]


def test_the_claim_grants_a_slowed_down_origin_only_its_lowered_limit(tenant, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=8)
    make_tasks(30, tenant=tenant, url=A, run_at=past(1))
    CircuitBreaker.objects.create(origin="http://127.0.0.1:9001", concurrency_limit=3)

    assert len(claim()) == 3


def _prepared_refills() -> list[tuple[int, int]]:
    """(generic plans, custom plans) of every prepared form of the refill on this connection."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%picked AS (%"],
        )
        return cursor.fetchall()


def _refills_in_turn(lane, count: int) -> list:
    """The ids `count` refills start, two at a time, as a worker whose sends all ended would ask."""
    started = []
    for _ in range(count):
        started.extend(task.id for task in refill(lane, want=2, in_flight=0).tasks)
    return started


@pytest.mark.claim_sql
def test_the_refill_is_prepared_once_and_a_plan_for_any_parameters_takes_the_same_tasks(
    tenant, callbacks_settings
):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=2)
    # Three priorities, each due at other times: a plan that lost either order would show it.
    tasks = [make_task(tenant=tenant, url=A, run_at=past(100 - i), priority=i % 3) for i in range(12)]
    in_claim_order = [task.id for task in sorted(tasks, key=lambda t: (-t.priority, t.next_attempt_at))]
    lane = the_lane(claim())  # the leader starts the first two
    with connection.cursor() as cursor:
        # What PostgreSQL switches to after five runs when it costs no more: one plan for any
        # parameters. Forced here from the first run (the test's transaction ends the setting).
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")

    started = _refills_in_turn(lane, 5)

    assert started == in_claim_order[2:]
    assert _prepared_refills() == [(5, 0)]  # parsed once, never planned for its parameters


@pytest.mark.claim_sql
def test_with_prepared_statements_off_the_refill_is_sent_whole_each_time(tenant, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=2)
    make_tasks(8, tenant=tenant, url=A, run_at=past(1))
    lane = the_lane(claim())
    connection.ensure_connection()
    threshold = connection.connection.prepare_threshold
    connection.connection.prepare_threshold = None  # what DB_PREPARED_STATEMENTS=false configures
    try:
        started = _refills_in_turn(lane, 3)
    finally:
        connection.connection.prepare_threshold = threshold

    assert len(set(started)) == 6
    assert _prepared_refills() == []
