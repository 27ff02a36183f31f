"""Status tracking: every transition of a task leaves an event, readable through the API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from callbacks.delivery.claim import leases
from callbacks.delivery.dispatcher import Dispatcher
from callbacks.delivery.worker import DeliveryWorker
from callbacks.models import CallbackTask, TaskEvent, TaskStatus
from tests.receivers import Reply


@pytest.fixture
def worker():
    worker = DeliveryWorker(concurrency=4, flush_seconds=0.01, name="test-worker")
    yield worker
    worker.shutdown(timeout=10)


def deliver_due(worker):
    for claim in leases.claim_due(limit=100):
        worker.deliver_lane(claim.token, claim.task_ids)
    assert worker.wait_idle(timeout=30)


def transitions(task_id):
    return list(
        TaskEvent.objects.filter(task_id=task_id).order_by("at", "id").values_list("from_status", "to_status")
    )


@pytest.mark.django_db(transaction=True)
def test_a_task_walked_through_retries_has_every_transition_in_its_history(api, receiver, worker):
    receiver.respond = lambda request: Reply(status=503) if request.seq == 1 else Reply()
    created = api.post(
        "/api/v1/callbacks/",
        {"url": receiver.url + "/hook", "max_retries": 3, "backoff": {"initial_seconds": 1}},
        format="json",
    ).json()
    task_id = created["id"]

    deliver_due(worker)
    assert CallbackTask.objects.get(id=task_id).status == TaskStatus.RETRYING
    CallbackTask.objects.filter(id=task_id).update(next_attempt_at=timezone.now())  # the backoff is over
    deliver_due(worker)

    assert transitions(task_id) == [
        ("", "scheduled"),
        ("scheduled", "queued"),
        ("queued", "running"),
        ("running", "retrying"),
        ("retrying", "queued"),
        ("queued", "running"),
        ("running", "succeeded"),
    ]
    events = api.get(f"/api/v1/callbacks/{task_id}/events/").json()["results"]
    assert [(e["from_status"], e["to_status"]) for e in events] == transitions(task_id)
    assert events[0]["note"] == "created"
    assert events[3]["note"].startswith("attempt 1: HTTP 503")
    assert events[5]["note"] == "attempt 2"
    times = [e["at"] for e in events]
    assert times == sorted(times)


@pytest.mark.django_db(transaction=True)
def test_cancel_release_and_interruption_are_recorded_too(api, tenant):
    def create():
        return api.post("/api/v1/callbacks/", {"url": "http://127.0.0.1:9/hook"}, format="json").json()["id"]

    cancelled, released, interrupted = create(), create(), create()
    assert api.post(f"/api/v1/callbacks/{cancelled}/cancel/").status_code == 200
    (claim,) = leases.claim_due(limit=10)
    leases.release_claimed(token=claim.token, task_ids=[released], note="broker unavailable; given back")
    leases.start_claimed(token=claim.token, task_ids=[interrupted])
    Dispatcher(name="test").reap(now=timezone.now() + timedelta(hours=1))

    assert transitions(cancelled) == [("", "scheduled"), ("scheduled", "cancelled")]
    assert transitions(released)[-2:] == [("scheduled", "queued"), ("queued", "scheduled")]
    assert TaskEvent.objects.filter(task_id=released).last().note == "broker unavailable; given back"
    assert transitions(interrupted)[-2:] == [("queued", "running"), ("running", "retrying")]
    assert "interrupted" in TaskEvent.objects.filter(task_id=interrupted).last().note
    assert api.post(f"/api/v1/callbacks/{cancelled}/cancel/").status_code == 200  # idempotent
    assert TaskEvent.objects.filter(task_id=cancelled).count() == 2
