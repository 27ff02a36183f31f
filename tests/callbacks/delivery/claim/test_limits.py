"""Respect for targets at claim time: per-origin concurrency, tenant shares, fairness, rate limits."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from callbacks.delivery.claim import limits
from callbacks.delivery.dispatcher import Dispatcher
from callbacks.delivery.instruments import heartbeats
from callbacks.models import CallbackTask, Lane
from tests.callbacks.delivery.attempts import OK, ORIGIN_A, ORIGIN_B, A, B, claim, finish, later
from tests.factories import make_task, make_tasks, past

pytestmark = pytest.mark.django_db


def origins(claimed) -> Counter:
    by_id = dict(CallbackTask.objects.filter(id__in=[i for i, _ in claimed]).values_list("id", "origin"))
    return Counter(by_id[task_id] for task_id, _ in claimed)


def test_claims_stop_at_the_origin_limit_until_attempts_finish(tenant, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=3)
    make_tasks(10, tenant=tenant, url=A, run_at=past(1))

    first = claim()
    assert len(first) == 3
    assert claim() == []  # three in flight (queued or running): no room

    finish(first[:2], lambda task: OK)
    assert len(claim()) == 2


def test_a_tenant_limit_caps_its_own_share_of_an_origin(tenant, other_api, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=5)
    tenant.max_concurrency_per_origin = 2
    tenant.save()
    mine = make_tasks(10, tenant=tenant, url=A, run_at=past(10))  # older: first in line
    make_tasks(10, tenant=other_api.tenant, url=A, run_at=past(1))

    claimed = {task_id for task_id, _ in claim()}

    assert len(claimed) == 5  # the origin's limit holds for both
    assert len(claimed & {t.id for t in mine}) == 2  # the tenant's own share
    assert claim() == []


def test_an_origin_at_its_limit_does_not_starve_others(tenant, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=20)
    make_tasks(20, tenant=tenant, url=A, priority=9, run_at=past(100))
    assert len(claim()) == 20  # A is now at its limit
    make_tasks(300, tenant=tenant, url=A, priority=9, run_at=past(60))  # a flood, older and higher
    late = make_tasks(5, tenant=tenant, url=B, priority=1, run_at=past(1))

    claimed = claim(limit=10)

    assert {task_id for task_id, _ in claimed} == {t.id for t in late}


def test_an_origin_filling_up_mid_window_leaves_room_for_others(tenant, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=2)
    make_tasks(300, tenant=tenant, url=A, priority=9, run_at=past(60))
    make_tasks(5, tenant=tenant, url=B, priority=1, run_at=past(1))

    claimed = claim(limit=10)  # the first read is all A (30 rows): A fills at 2, B comes next

    assert origins(claimed) == {ORIGIN_A: 2, ORIGIN_B: 2}


def end_lanes(claimed, *, now) -> None:
    """The workers of these claims are done: every task recorded, every lane narrowed to nothing."""
    finish(claimed, lambda task: OK, now=now)


def test_the_rate_limit_gives_one_paced_lane_then_spaces_claims_by_the_token_bucket(
    tenant, callbacks_settings
):
    callbacks_settings(RATE_LIMIT_PER_ORIGIN=2.0, MAX_CONCURRENCY_PER_ORIGIN=1000)
    make_tasks(20, tenant=tenant, url=A, run_at=past(1))
    make_tasks(3, tenant=tenant, url=B, run_at=past(1))
    targets = limits.TargetLimits()
    t0 = timezone.now()

    burst = claim(now=t0, targets=targets)
    assert origins(burst) == {ORIGIN_A: 2, ORIGIN_B: 2}  # a bucket holds one second's worth
    assert set(Lane.objects.values_list("origin", "rate", "refills")) == {
        (ORIGIN_A, 2.0, True),
        (ORIGIN_B, 2.0, True),
    }  # one lane an origin, holding its whole rate: its worker paces the rest
    assert claim(now=later(t0, 5), targets=targets) == []  # nothing more while the lanes live

    end_lanes(burst, now=later(t0, 5))
    # The lanes spent the rate until they ended: the leader's buckets start empty then.
    assert claim(now=later(t0, 5), targets=targets) == []
    assert targets.saturated and targets.retry_in == pytest.approx(0.5)
    assert origins(claim(now=later(t0, 5.5), targets=targets)) == {ORIGIN_A: 1, ORIGIN_B: 1}


def test_a_tenant_rate_limit_caps_its_share_only(tenant, other_api, callbacks_settings):
    callbacks_settings(RATE_LIMIT_PER_ORIGIN=0.0, MAX_CONCURRENCY_PER_ORIGIN=1000)
    tenant.rate_limit_per_origin = 1.0
    tenant.save()
    mine = {t.id for t in make_tasks(5, tenant=tenant, url=A, run_at=past(1))}
    theirs = {t.id for t in make_tasks(5, tenant=other_api.tenant, url=A, run_at=past(1))}
    targets = limits.TargetLimits()
    t0 = timezone.now()

    claimed = claim(now=t0, targets=targets)
    assert len({i for i, _ in claimed} & mine) == 1 and {i for i, _ in claimed} & theirs == theirs
    assert dict(Lane.objects.values_list("tenant_id", "rate")) == {tenant.id: 1.0, other_api.tenant.id: None}

    end_lanes(claimed, now=later(t0, 1))
    second = {task_id for task_id, _ in claim(now=later(t0, 2), targets=targets)}
    assert len(second) == 1 and second <= mine
    assert claim(now=later(t0, 2), targets=targets) == []


def test_the_dispatcher_waits_instead_of_spinning_when_targets_are_full(tenant, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=1, DISPATCH_POLL_SECONDS=0.2)
    make_tasks(3, tenant=tenant, url=A, run_at=past(1))
    dispatcher = Dispatcher(name="test-dispatcher")
    dispatcher._enqueue = lambda claim: None  # no broker needed: the claim is what is tested

    assert dispatcher._sleep_seconds() == 0.0  # due work, and nothing known yet of the targets
    assert dispatcher.step() == 1
    assert dispatcher._sleep_seconds() == pytest.approx(0.2)  # the rest is held back: wait for a wake-up
    assert dispatcher.step() == 0


def sleeping_dispatcher(tenant, callbacks_settings, *, limit: int) -> Dispatcher:
    """A dispatcher (no broker: the claim is what is tested) with three tasks to A due, a poll of
    5 s, and leases long enough that looking for their end does not bound its sleep."""
    callbacks_settings(
        MAX_CONCURRENCY_PER_ORIGIN=limit,
        DISPATCH_POLL_SECONDS=5.0,
        QUEUED_LEASE_SECONDS=60,
        RUNNING_LEASE_SECONDS=60,
    )
    make_tasks(3, tenant=tenant, url=A, run_at=past(1))
    dispatcher = Dispatcher(name="test-dispatcher")
    dispatcher._enqueue = lambda claim: None
    return dispatcher


def test_while_due_work_waits_for_room_a_task_falling_due_elsewhere_ends_the_sleep(
    tenant, callbacks_settings
):
    dispatcher = sleeping_dispatcher(tenant, callbacks_settings, limit=1)

    assert dispatcher.step() == 1
    assert dispatcher.targets.holding  # two of A's due tasks wait for its one slot
    assert dispatcher._sleep_seconds() == 5.0  # nothing else: a wake-up or the poll
    make_task(tenant=tenant, url=B, run_at=timezone.now() + timedelta(seconds=2))
    assert 1.0 < dispatcher._sleep_seconds() <= 2.0  # B's task is claimed when it falls due


@pytest.mark.parametrize(
    "limit, claimed, holding",
    [(1, 1, True), (5, 3, False)],
    ids=["due work waits for room", "the claim took all there was"],
)
def test_a_task_that_fell_due_since_the_claim_ends_the_sleep_at_once(
    tenant, callbacks_settings, limit, claimed, holding
):
    dispatcher = sleeping_dispatcher(tenant, callbacks_settings, limit=limit)

    assert dispatcher.step() == claimed
    assert dispatcher.targets.saturated and dispatcher.targets.holding is holding
    # Due after the claim read the due work, and before the sleep is decided: no claim has seen it.
    make_task(tenant=tenant, url=B, run_at=timezone.now())
    assert dispatcher._sleep_seconds() == 0.0
    assert dispatcher.step() == 1


def test_due_work_of_a_queue_no_cluster_serves_neither_spins_the_dispatcher_nor_delays_other_work(
    tenant, callbacks_settings
):
    callbacks_settings(DISPATCH_POLL_SECONDS=5.0, QUEUED_LEASE_SECONDS=60, RUNNING_LEASE_SECONDS=60)
    heartbeats.beat(role=heartbeats.WORKER, name="default worker", info={"queue": "default"})
    make_tasks(2, tenant=tenant, url=A, queue="unserved", run_at=past(1))
    dispatcher = Dispatcher(name="test-dispatcher")
    dispatcher._enqueue = lambda claim: None

    assert dispatcher.step() == 0
    assert dispatcher._sleep_seconds() == 5.0  # the unserved queue's work waits: no spinning
    make_task(tenant=tenant, url=B, run_at=timezone.now())
    assert dispatcher._sleep_seconds() == 0.0
    assert dispatcher.step() == 1


def test_a_claim_that_took_all_there_was_is_not_holding(tenant, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=5)
    make_tasks(3, tenant=tenant, url=A, run_at=past(1))
    dispatcher = Dispatcher(name="test-dispatcher")
    dispatcher._enqueue = lambda claim: None

    assert dispatcher.step() == 3
    # Saturated (room left, nothing more to read), but nothing due waits: a task due now that the
    # claim did not see would be looked for from the start of the index.
    assert dispatcher.targets.saturated and not dispatcher.targets.holding
