"""What waits and why: ready, held (and for which reason), waiting for its time, as the claim decides."""

from datetime import timedelta

import pytest
from django.utils import timezone

from callbacks.models import BreakerState, CircuitBreaker, Lane, TaskStatus
from callbacks.services.queues import queue_pause
from monitoring import backlog
from tests.factories import declare_queues, make_task

pytestmark = pytest.mark.django_db
DOWN = "https://down.example.com/hook"
UP = "https://up.example.com/hook"


def an_open_breaker(origin="https://down.example.com:443", *, probe_in=timedelta(minutes=5)):
    return CircuitBreaker.objects.create(
        origin=origin,
        state=BreakerState.OPEN,
        opened_at=timezone.now(),
        next_probe_at=timezone.now() + probe_in,
    )


def test_a_future_task_waits_for_its_time_and_a_due_one_is_ready(tenant):
    make_task(tenant=tenant, url=UP, run_at=timezone.now() + timedelta(hours=1))
    make_task(
        tenant=tenant, url=UP, status=TaskStatus.RETRYING, run_at=timezone.now() + timedelta(seconds=30)
    )
    make_task(tenant=tenant, url=UP, run_at=timezone.now() - timedelta(seconds=1))

    found = backlog.backlog()

    assert (found["ready"], found["held"], found["waiting"]) == (1, 0, 2)


def test_tasks_of_an_open_breaker_are_held_before_and_after_the_sweep_moved_them(tenant):
    breaker = an_open_breaker()
    past = timezone.now() - timedelta(seconds=5)
    make_task(tenant=tenant, url=DOWN, run_at=past)  # due, not swept yet
    swept = make_task(tenant=tenant, url=DOWN, run_at=past)
    swept.next_attempt_at = breaker.next_probe_at  # what breaker.holding does; due_at stays
    swept.save()
    make_task(tenant=tenant, url=DOWN, run_at=timezone.now() + timedelta(hours=1))  # not due: waits

    found = backlog.backlog()

    assert (found["ready"], found["held"], found["waiting"]) == (0, 2, 1)
    assert found["reasons"][backlog.BREAKER] == 2


def test_an_open_breaker_past_its_probe_time_lets_its_tasks_go(tenant):
    an_open_breaker(probe_in=timedelta(seconds=-1))
    make_task(tenant=tenant, url=DOWN, run_at=timezone.now() - timedelta(seconds=5))

    assert backlog.backlog()["ready"] == 1


def test_a_paused_queue_holds_its_due_tasks_only(tenant):
    declare_queues("billing")
    queue_pause(name="billing", actor_type="user", actor="test")
    make_task(tenant=tenant, url=UP, queue="billing")
    make_task(tenant=tenant, url=UP, queue="billing", run_at=timezone.now() + timedelta(hours=1))
    make_task(tenant=tenant, url=UP)

    found = backlog.backlog()

    billing = next(group for group in found["groups"] if group["name"] == "billing")
    assert (billing["ready"], billing["held"], billing["waiting"]) == (0, 1, 1)
    assert billing["reasons"][backlog.QUEUE_PAUSED] == 1
    assert found["ready"] == 1


def test_an_origin_at_its_concurrency_limit_holds_its_due_tasks(tenant, settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "MAX_CONCURRENCY_PER_ORIGIN": 2}
    now = timezone.now()
    Lane.objects.create(
        token="lane-1",
        queue="default",
        origin="https://up.example.com:443",
        tenant=tenant,
        width=2,
        created_at=now,
        expires_at=now + timedelta(minutes=1),
    )
    make_task(tenant=tenant, url=UP)
    make_task(tenant=tenant, url="https://other.example.com/")

    found = backlog.backlog(by="origin")

    groups = {group["name"]: group for group in found["groups"]}
    assert groups["https://up.example.com:443"]["reasons"][backlog.AT_LIMIT] == 1
    assert groups["https://other.example.com:443"]["ready"] == 1


def test_a_deactivated_tenant_and_an_ordering_key_hold_tasks(tenant):
    make_task(tenant=tenant, url=UP, ordering_key="order-7")
    make_task(tenant=tenant, url=UP, ordering_key="order-7", created_at=timezone.now() + timedelta(seconds=1))

    found = backlog.backlog()
    assert (found["ready"], found["reasons"][backlog.BEHIND_KEY]) == (1, 1)

    tenant.is_active = False
    tenant.save()
    assert backlog.backlog()["reasons"][backlog.TENANT_INACTIVE] == 2


def test_filters_narrow_the_counts(tenant, other_api):
    make_task(tenant=tenant, url=UP)
    make_task(tenant=other_api.tenant, url=DOWN)

    assert backlog.backlog(tenant=tenant)["ready"] == 1
    assert backlog.backlog(origin="https://down.example.com:443")["ready"] == 1
    assert backlog.backlog(queue="nowhere")["ready"] == 0
