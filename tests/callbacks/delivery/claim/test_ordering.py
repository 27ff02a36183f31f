"""Ordering keys: tasks sharing (tenant, ordering_key) go one at a time, in creation order."""

from datetime import timedelta

import pytest
from django.utils import timezone

from callbacks.delivery.claim import leases
from callbacks.models import CallbackTask, TaskStatus
from callbacks.services.tasks import task_cancel
from tests.factories import make_task

URL = "http://127.0.0.1:9/hook"


def claimed_ids(limit=100):
    return [task_id for claim in leases.claim_due(limit=limit) for task_id in claim.task_ids]


def finish(task_id, status=TaskStatus.SUCCEEDED):
    CallbackTask.objects.filter(id=task_id).update(status=status, locked_by="", finished_at=timezone.now())


@pytest.mark.django_db
def test_only_the_earliest_unfinished_task_of_a_key_is_claimed(tenant, other_api):
    a1 = make_task(tenant=tenant, url=URL, ordering_key="order-1")
    a2 = make_task(tenant=tenant, url=URL, ordering_key="order-1")
    b1 = make_task(tenant=tenant, url=URL, ordering_key="order-2")
    b2 = make_task(
        tenant=tenant, url=URL, ordering_key="order-2", priority=9
    )  # priority does not jump the key
    theirs = make_task(tenant=other_api.tenant, url=URL, ordering_key="order-1")  # another tenant's key
    plain = [make_task(tenant=tenant, url=URL) for _ in range(3)]

    claimed = claimed_ids()

    assert set(claimed) == {a1.id, b1.id, theirs.id, *(t.id for t in plain)}
    assert a2.id not in claimed and b2.id not in claimed


@pytest.mark.django_db
def test_the_next_goes_when_the_previous_is_final_and_not_before(tenant):
    first, second, third = (make_task(tenant=tenant, url=URL, ordering_key="k") for _ in range(3))

    assert claimed_ids() == [first.id]
    assert claimed_ids() == []  # first queued: not final
    CallbackTask.objects.filter(id=first.id).update(
        status=TaskStatus.RETRYING, next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    assert claimed_ids() == []  # first waits for a retry: second still waits
    finish(first.id, TaskStatus.DEAD)
    assert claimed_ids() == [second.id]
    finish(second.id, TaskStatus.FAILED)
    assert claimed_ids() == [third.id]


@pytest.mark.django_db
def test_a_retrying_task_keeps_its_turn(tenant):
    first, second = (make_task(tenant=tenant, url=URL, ordering_key="k") for _ in range(2))
    CallbackTask.objects.filter(id=first.id).update(status=TaskStatus.RETRYING)

    assert claimed_ids() == [first.id]


@pytest.mark.django_db
def test_cancelling_the_earlier_task_lets_the_next_go(tenant):
    first, second = (make_task(tenant=tenant, url=URL, ordering_key="k") for _ in range(2))

    task_cancel(task=first, actor_type="tenant", actor="t")

    assert claimed_ids() == [second.id]


@pytest.mark.django_db
def test_same_creation_time_is_ordered_by_id(tenant):
    now = timezone.now()
    tasks = [make_task(tenant=tenant, url=URL, ordering_key="k", created_at=now) for _ in range(4)]

    assert claimed_ids() == [min(task.id for task in tasks)]


@pytest.mark.django_db
def test_a_batch_is_delivered_in_its_own_order(api):
    items = [{"url": URL, "ordering_key": "k", "body": {"n": n}} for n in range(6)]
    response = api.post("/api/v1/callbacks/batch/", {"callbacks": items}, format="json")
    assert response.status_code == 201
    created = [item["id"] for item in response.json()["callbacks"]]

    order = []
    while claimed := claimed_ids():
        assert len(claimed) == 1
        order.append(str(claimed[0]))
        finish(claimed[0])

    assert order == created
