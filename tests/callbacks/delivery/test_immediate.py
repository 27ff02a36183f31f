"""One attempt made at once (callbacks/delivery/immediate.py): claimed in the creating transaction,
sent to a real receiver, recorded as a worker records it, its lane gone after."""

import threading

import pytest
from django.db import connection

from callbacks.delivery import immediate
from callbacks.delivery.claim import leases
from callbacks.models import CallbackTask, Lane, TaskEvent, TaskExecution, TaskStatus
from callbacks.services.queues import queue_pause
from callbacks.services.tasks import task_create
from tests.receivers import Receiver, Reply

pytestmark = pytest.mark.django_db


def _creator(tenant, url, **data):
    return lambda: task_create(tenant=tenant, data={"url": url, "body": {"n": 1}, **data}, actor="ops")[0]


def test_the_attempt_is_sent_and_recorded_as_a_workers_is(tenant, receiver):
    sent = immediate.create_and_send(_creator(tenant, receiver.url + "/hook"), worker="test")

    [received] = receiver.received
    assert received.body == b'{"n":1}'
    assert received.headers["x-callback-attempt"] == "1"
    assert received.headers["webhook-signature"].startswith("v1,")
    task = CallbackTask.objects.get()
    assert sent.task.pk == task.pk and task.status == TaskStatus.SUCCEEDED
    assert (task.attempts, task.locked_by, task.locked_until) == (1, "", None)
    execution = TaskExecution.objects.get()
    assert sent.execution.pk == execution.pk
    assert (execution.outcome, execution.status_code, execution.worker) == ("success", 200, "test")
    steps = list(TaskEvent.objects.order_by("at", "id").values_list("from_status", "to_status"))
    assert steps == [
        ("", "scheduled"),
        ("scheduled", "queued"),
        ("queued", "running"),
        ("running", "succeeded"),
    ]
    assert not Lane.objects.exists()


def test_a_failed_attempt_is_left_to_the_retry_policy(tenant):
    with Receiver(Reply(status=503, body=b"busy")) as failing:
        sent = immediate.create_and_send(_creator(tenant, failing.url, max_retries=2), worker="test")

    assert (sent.execution.outcome, sent.execution.status_code) == ("http_5xx", 503)
    task = CallbackTask.objects.get()
    assert task.status == TaskStatus.RETRYING and task.next_attempt_at is not None
    assert not Lane.objects.exists()


@pytest.mark.django_db(transaction=True)  # the lane is read from another connection, as the leader reads it
def test_the_lane_counts_in_its_origins_slots_while_the_attempt_is_out(tenant):
    release = threading.Event()
    seen = {}

    def respond(_received):
        release.wait(10)
        return Reply()

    with Receiver(respond) as slow:

        def look():
            # From another connection: what the leader's claim would read meanwhile.
            slow.wait_for(1)
            try:
                seen["lanes"] = list(Lane.objects.values_list("origin", "width"))
            finally:
                connection.close()
                release.set()

        watcher = threading.Thread(target=look)
        watcher.start()
        immediate.create_and_send(_creator(tenant, slow.url), worker="test")
        watcher.join(10)

    assert seen["lanes"] == [(f"http://127.0.0.1:{slow.port}", 1)]
    assert not Lane.objects.exists()


def test_a_task_that_is_not_claimable_is_left_for_the_engine(tenant, receiver):
    queue_pause(name="default", actor_type="user", actor="ops")

    sent = immediate.create_and_send(_creator(tenant, receiver.url), worker="test")

    assert sent.execution is None
    assert CallbackTask.objects.get().status == TaskStatus.SCHEDULED
    assert receiver.received == [] and not Lane.objects.exists()


def test_claim_task_takes_only_a_claimable_task(tenant):
    task, _ = task_create(tenant=tenant, data={"url": "https://hooks.example.com/"}, actor="ops")

    token = leases.claim_task(task_id=task.pk)

    assert token and CallbackTask.objects.get(pk=task.pk).status == TaskStatus.QUEUED
    assert Lane.objects.get().token == token
    assert leases.claim_task(task_id=task.pk) is None  # queued already: never claimed twice
