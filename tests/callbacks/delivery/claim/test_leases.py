import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from callbacks.delivery.claim import leases
from callbacks.delivery.dispatcher import Dispatcher
from callbacks.models import CallbackTask, TaskEvent, TaskExecution, TaskStatus
from tests.factories import make_task, make_tasks, past

URL = "http://127.0.0.1:9/hook"


@pytest.mark.django_db
def test_claim_takes_due_tasks_by_priority_then_due_time(tenant):
    late_low = make_task(tenant=tenant, url=URL, priority=1, run_at=past(30))
    early_low = make_task(tenant=tenant, url=URL, priority=1, run_at=past(60))
    high = make_task(tenant=tenant, url=URL, priority=9, run_at=past(1))
    future = make_task(tenant=tenant, url=URL, priority=9, run_at=timezone.now() + timedelta(hours=1))

    claims = leases.claim_due(limit=10)

    assert len(claims) == 1
    assert claims[0].task_ids == [high.id, early_low.id, late_low.id]
    assert CallbackTask.objects.get(id=future.id).status == TaskStatus.SCHEDULED
    claimed = CallbackTask.objects.get(id=high.id)
    assert claimed.status == TaskStatus.QUEUED
    assert claimed.locked_by == claims[0].token
    assert claimed.locked_until > timezone.now()
    assert TaskEvent.objects.filter(task_id=high.id, to_status=TaskStatus.QUEUED).count() == 1


@pytest.mark.django_db
def test_claim_respects_limit_and_groups_by_queue(tenant):
    make_tasks(3, tenant=tenant, url=URL, queue="alpha")
    make_tasks(2, tenant=tenant, url=URL, queue="beta")

    first = leases.claim_due(limit=4)
    second = leases.claim_due(limit=4)

    assert sum(len(c.task_ids) for c in first) == 4
    assert sum(len(c.task_ids) for c in second) == 1
    assert {c.queue for c in first} <= {"alpha", "beta"}
    assert all(len(set(c.task_ids)) == len(c.task_ids) for c in first)


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_never_claim_the_same_task(tenant, settings):
    # One origin for all: lift its in-flight limit, which is not what this test is about.
    settings.CALLBACKS = {**settings.CALLBACKS, "MAX_CONCURRENCY_PER_ORIGIN": 1000}
    tasks = make_tasks(60, tenant=tenant, url=URL)
    results = [[], [], []]

    def claimer(out):
        try:
            while True:
                claims = leases.claim_due(limit=7)
                if not claims:
                    return
                for claim in claims:
                    out.extend(claim.task_ids)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=claimer, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    claimed = [task_id for out in results for task_id in out]
    assert sorted(claimed) == sorted(task.id for task in tasks)  # every task once, none twice


@pytest.mark.django_db
def test_start_requires_the_claim_token_and_a_queued_task(tenant):
    a, b, c = make_tasks(3, tenant=tenant, url=URL)
    (claim,) = leases.claim_due(limit=10)
    CallbackTask.objects.filter(id=b.id).update(status=TaskStatus.CANCELLED)

    assert leases.start_claimed(token="not-the-token", task_ids=claim.task_ids) == []
    started = leases.start_claimed(token=claim.token, task_ids=claim.task_ids)

    assert {task.id for task in started} == {a.id, c.id}
    assert all(task.attempts == 1 and task.status == TaskStatus.RUNNING for task in started)
    assert CallbackTask.objects.get(id=a.id).attempts == 1
    # A second start of the same claim finds nothing queued: no attempt is sent twice.
    assert leases.start_claimed(token=claim.token, task_ids=claim.task_ids) == []


@pytest.mark.django_db
def test_release_gives_back_without_using_an_attempt(tenant):
    task = make_task(tenant=tenant, url=URL)
    (claim,) = leases.claim_due(limit=10)

    assert leases.release_claimed(token=claim.token, task_ids=claim.task_ids, note="test") == 1

    task.refresh_from_db()
    assert (task.status, task.attempts, task.locked_by) == (TaskStatus.SCHEDULED, 0, "")
    assert leases.claim_due(limit=10)[0].task_ids == [task.id]


@pytest.mark.django_db
def test_expired_queued_lease_comes_back(tenant):
    task = make_task(tenant=tenant, url=URL)
    leases.claim_due(limit=10)

    assert leases.requeue_expired_queued(now=timezone.now()) == 0
    assert leases.requeue_expired_queued(now=timezone.now() + timedelta(hours=1)) == 1

    task.refresh_from_db()
    assert task.status == TaskStatus.SCHEDULED


@pytest.mark.django_db
def test_expired_running_lease_records_an_interrupted_attempt(tenant):
    task = make_task(tenant=tenant, url=URL, max_retries=1)
    (claim,) = leases.claim_due(limit=10)
    leases.start_claimed(token=claim.token, task_ids=claim.task_ids)

    later = timezone.now() + timedelta(hours=1)
    assert Dispatcher().reap(now=later) == 1

    task.refresh_from_db()
    assert task.status == TaskStatus.RETRYING
    assert task.last_outcome == "interrupted"
    execution = TaskExecution.objects.get(task=task)
    assert (execution.attempt, execution.outcome) == (1, "interrupted")

    # The second interruption exhausts max_retries=1: dead, both attempts on record.
    (claim,) = leases.claim_due(limit=10, now=later + timedelta(minutes=5))
    leases.start_claimed(token=claim.token, task_ids=claim.task_ids)
    Dispatcher().reap(now=later + timedelta(hours=2))
    task.refresh_from_db()
    assert task.status == TaskStatus.DEAD
    assert list(
        TaskExecution.objects.filter(task=task).order_by("attempt").values_list("attempt", flat=True)
    ) == [1, 2]
