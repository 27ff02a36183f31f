"""What tenants share in a claim (callbacks/delivery/claim/limits.py): the outstanding budget, in equal
shares whatever one tenant's volume or priority, only queues a live cluster serves, and a half-open
breaker's probes in turn."""

from collections import Counter

import pytest
from django.utils import timezone

from callbacks.delivery.claim import leases, limits
from callbacks.models import BreakerState, CallbackTask, CircuitBreaker, Lane, QueueState
from tests.callbacks.delivery.attempts import ORIGIN_A, A, B
from tests.factories import make_task, make_tasks, past

pytestmark = pytest.mark.django_db


def claimed_tenants(claims) -> Counter:
    ids = [task_id for claim in claims for task_id in claim.task_ids]
    return Counter(CallbackTask.objects.filter(id__in=ids).values_list("tenant_id", flat=True))


def test_one_tenants_urgent_flood_takes_no_more_than_its_share_of_the_budget(
    tenant, other_api, callbacks_settings
):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=1000)
    make_tasks(30, tenant=tenant, url=A, priority=9, run_at=past(2))
    make_tasks(5, tenant=other_api.tenant, url=B, priority=0, run_at=past(1))

    claims = leases.claim_due(limit=100, max_in_flight=10, targets=limits.TargetLimits())

    assert claimed_tenants(claims) == {tenant.id: 5, other_api.tenant.id: 5}


def test_a_tenant_over_its_share_gets_nothing_more_while_another_waits(tenant, other_api, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=1000)
    targets = limits.TargetLimits()
    make_tasks(30, tenant=tenant, url=A, priority=9, run_at=past(2))
    first = leases.claim_due(limit=100, max_in_flight=10, targets=targets)
    assert claimed_tenants(first) == {tenant.id: 10}  # alone, it may take the whole budget

    make_tasks(5, tenant=other_api.tenant, url=B, run_at=past(1))
    CallbackTask.objects.filter(id__in=first[0].task_ids[:4]).update(status="succeeded")
    Lane.objects.filter(token=first[0].token).update(width=6)  # four slots came back
    targets.due_tenants_at = None  # read the tenants with due work again now
    second = leases.claim_due(limit=100, max_in_flight=10, targets=targets)

    assert claimed_tenants(second) == {other_api.tenant.id: 4}


def test_a_tenant_alone_holds_no_more_than_the_workers_can_send(tenant, other_api, callbacks_settings):
    """The budget is twice what the workers send at once; alone, a tenant takes only the half they
    can send, so the next tenant's callbacks are claimed at once, not after its sends end."""
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=1000)
    targets = limits.TargetLimits()
    make_tasks(30, tenant=tenant, url=A, priority=9, run_at=past(2))
    first = leases.claim_due(limit=100, max_in_flight=10, sendable=5, targets=targets)
    assert claimed_tenants(first) == {tenant.id: 5}

    make_tasks(3, tenant=other_api.tenant, url=B, run_at=past(1))
    targets.due_tenants_at = None  # read the tenants with due work again now
    second = leases.claim_due(limit=100, max_in_flight=10, sendable=5, targets=targets)

    assert claimed_tenants(second) == {other_api.tenant.id: 3}


def test_a_tenant_at_its_share_with_nothing_else_due_is_not_read_for(tenant, callbacks_settings, monkeypatch):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=1000)
    targets = limits.TargetLimits()
    make_tasks(30, tenant=tenant, url=A, run_at=past(2))
    assert claimed_tenants(leases.claim_due(limit=100, max_in_flight=10, sendable=5, targets=targets)) == {
        tenant.id: 5
    }
    reads = []
    original = limits.Round.read
    monkeypatch.setattr(
        limits.Round, "read", lambda self, *a, **kw: reads.append(1) or original(self, *a, **kw)
    )

    assert leases.claim_due(limit=100, max_in_flight=10, sendable=5, targets=targets) == []
    # The read would have walked the tenant's 25 due tasks to leave each out: nothing is read, and
    # the dispatcher knows due work waits (it sleeps until a lane narrows, not until the next poll).
    assert reads == []
    assert targets.saturated and targets.holding


def test_a_tenant_whose_work_just_fell_due_is_claimed_beside_one_at_its_share(
    tenant, other_api, callbacks_settings
):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=1000)
    targets = limits.TargetLimits()
    make_tasks(30, tenant=tenant, url=A, run_at=past(2))
    leases.claim_due(limit=100, max_in_flight=10, sendable=5, targets=targets)

    make_tasks(3, tenant=other_api.tenant, url=B, run_at=past(1))
    # The tenants with due work, as the last claim read them (a second ago at most), name only the
    # first: that is asked again before concluding that nothing may be claimed.
    second = leases.claim_due(limit=100, max_in_flight=10, sendable=5, targets=targets)

    assert claimed_tenants(second) == {other_api.tenant.id: 3}


def test_queues_no_live_cluster_serves_are_not_claimed(tenant, callbacks_settings):
    QueueState.objects.create(name="unserved")
    make_tasks(3, tenant=tenant, url=A, queue="unserved", priority=9, run_at=past(1))
    served = make_task(tenant=tenant, url=B, run_at=past(1))

    claims = leases.claim_due(limit=100, served_queues={"default"})

    assert [task_id for claim in claims for task_id in claim.task_ids] == [served.id]
    assert set(CallbackTask.objects.filter(queue="unserved").values_list("status", flat=True)) == {
        "scheduled"
    }


def test_a_half_open_breakers_probes_go_round_the_tenants(tenant, other_api):
    now = timezone.now()
    CircuitBreaker.objects.create(
        origin=ORIGIN_A, state=BreakerState.OPEN, consecutive_failures=5, next_probe_at=past(1)
    )
    make_tasks(5, tenant=tenant, url=A, priority=9, run_at=past(2))
    theirs = make_task(tenant=other_api.tenant, url=A, priority=0, run_at=past(1))
    targets = limits.TargetLimits()
    first = leases.claim_due(limit=100, now=now, targets=targets)
    assert claimed_tenants(first) == {tenant.id: 1}  # the most urgent task probes first

    # That probe ended without a verdict (a timeout below the floor, say): the next goes to the other.
    CallbackTask.objects.filter(id__in=first[0].task_ids).update(
        status="retrying", locked_by="", next_attempt_at=past(1)
    )
    second = leases.claim_due(limit=100, now=timezone.now(), targets=targets)

    assert [task_id for claim in second for task_id in claim.task_ids] == [theirs.id]
