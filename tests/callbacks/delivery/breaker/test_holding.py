"""Tasks held back by open breakers: left out of claims, one probe let through when half open
(callbacks/delivery/claim/gate.py), moved to the probe time by the leader's sweep and buried past the
maximum deferral (callbacks/delivery/breaker/holding.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from callbacks.delivery.breaker import holding
from callbacks.models import BreakerState, CallbackTask, TaskEvent, TaskStatus
from tests.callbacks.delivery.attempts import (
    ORIGIN_A,
    ORIGIN_B,
    A,
    B,
    claim,
    later,
)
from tests.callbacks.delivery.breaker.breakers import open_breaker, state_of
from tests.factories import make_task, make_tasks, past

pytestmark = pytest.mark.django_db


def test_an_open_breaker_holds_claims_back_without_using_attempts(tenant):
    now = timezone.now()
    open_breaker(tenant, now=now)
    waiting = make_tasks(4, tenant=tenant, url=A, run_at=past(1))
    other = make_task(tenant=tenant, url=B, run_at=past(1))

    claimed = claim(now=later(now, 10))

    assert [task_id for task_id, _ in claimed] == [other.id]
    assert set(
        CallbackTask.objects.filter(id__in=[t.id for t in waiting]).values_list("status", "attempts")
    ) == {(TaskStatus.SCHEDULED, 0)}


def test_the_sweep_moves_held_tasks_to_the_probe_time_and_says_so_once(tenant):
    now = timezone.now()
    open_breaker(tenant, now=now)
    probe_at = state_of(ORIGIN_A).next_probe_at
    waiting = make_tasks(2, tenant=tenant, url=A, run_at=past(1))
    elsewhere = make_task(tenant=tenant, url=B, run_at=past(1))

    held, buried = holding.sweep(now=later(now, 1))
    holding.sweep(now=later(now, 2))

    assert (held, buried) == (5, 0)  # the two new tasks and the three that failed (their retries are due)
    for task in waiting:
        task.refresh_from_db()
        assert task.next_attempt_at == probe_at and task.status == TaskStatus.SCHEDULED and task.attempts == 0
        notes = list(
            TaskEvent.objects.filter(task=task, note__startswith="held").values_list("note", flat=True)
        )
        assert notes == [
            f"held: the circuit breaker of {ORIGIN_A} is open; next probe at {probe_at.isoformat(timespec='seconds')}"
        ]
    elsewhere.refresh_from_db()
    assert elsewhere.next_attempt_at < now


def test_half_open_lets_exactly_one_probe_through(tenant):
    now = timezone.now()
    open_breaker(tenant, now=now)
    make_tasks(5, tenant=tenant, url=A, run_at=past(1))
    other = make_tasks(2, tenant=tenant, url=B, run_at=past(1))
    at_probe_time = later(now, 31)

    first = claim(now=at_probe_time)
    second = claim(now=later(at_probe_time, 1))

    first_origins = sorted(CallbackTask.objects.get(id=task_id).origin for task_id, _ in first)
    assert first_origins == [ORIGIN_A, ORIGIN_B, ORIGIN_B]
    assert second == []  # the probe is in flight: nothing else for A
    assert state_of(ORIGIN_A).state == BreakerState.HALF_OPEN
    assert {t.id for t in other} <= {task_id for task_id, _ in first}


def test_tasks_held_past_the_maximum_deferral_go_dead(tenant, callbacks_settings):
    callbacks_settings(BREAKER_MAX_DEFER_SECONDS=3600.0)
    now = timezone.now()
    open_breaker(tenant, now=now)
    overdue = make_task(tenant=tenant, url=A, run_at=now - timedelta(hours=2))
    recent = make_task(tenant=tenant, url=A, run_at=now - timedelta(minutes=5))
    elsewhere = make_task(tenant=tenant, url=B, run_at=now - timedelta(hours=2))

    held, buried = holding.sweep(now=later(now, 1))

    assert buried == 1
    overdue.refresh_from_db()
    assert overdue.status == TaskStatus.DEAD and overdue.attempts == 0 and overdue.finished_at is not None
    assert f"the circuit breaker of {ORIGIN_A} held it for more than 3600 s" in overdue.last_error
    assert TaskEvent.objects.filter(task=overdue, to_status=TaskStatus.DEAD).exists()
    recent.refresh_from_db()
    elsewhere.refresh_from_db()
    assert recent.status == TaskStatus.SCHEDULED and elsewhere.status == TaskStatus.SCHEDULED
