"""Queues: declared before use; pause keeps tasks out of claims (and keeps them), resume, purge; API and
command."""

from io import StringIO
from unittest.mock import ANY

import pytest
from django.core.management import CommandError, call_command

from callbacks.delivery.claim import leases
from callbacks.errors import ApplicationError
from callbacks.models import AuditLog, CallbackTask, QueueState, TaskEvent, TaskStatus
from callbacks.services.queues import queue_pause, queue_purge, queue_resume
from tests.factories import make_task, make_tasks

URL = "http://127.0.0.1:9/hook"


@pytest.fixture(autouse=True)
def bulk_queue(db):
    """`bulk` declared, as the migration declares the queues in use (no audit row)."""
    QueueState.objects.create(name="bulk")


def claimed_ids():
    return {task_id for claim in leases.claim_due(limit=100) for task_id in claim.task_ids}


@pytest.mark.django_db
def test_a_paused_queue_keeps_its_tasks_until_resumed(tenant):
    bulk = make_tasks(3, tenant=tenant, url=URL, queue="bulk")
    other = make_task(tenant=tenant, url=URL)

    queue_pause(name="bulk", actor_type="user", actor="op")
    assert claimed_ids() == {other.id}
    assert set(CallbackTask.objects.filter(queue="bulk").values_list("status", flat=True)) == {"scheduled"}

    queue_resume(name="bulk", actor_type="user", actor="op")
    assert claimed_ids() == {task.id for task in bulk}
    assert list(AuditLog.objects.order_by("id").values_list("action", "actor_type", "object_id")) == [
        ("queue.pause", "user", "bulk"),
        ("queue.resume", "user", "bulk"),
    ]


@pytest.mark.django_db
def test_pause_and_resume_are_idempotent_and_check_the_name(tenant):
    queue_pause(name="bulk", actor_type="user", actor="op")
    queue_pause(name="bulk", actor_type="user", actor="op")
    assert AuditLog.objects.filter(action="queue.pause").count() == 1
    with pytest.raises(ApplicationError) as caught:
        queue_pause(name="Not A Queue!", actor_type="user", actor="op")
    assert "name" in caught.value.fields


@pytest.mark.django_db
def test_purge_cancels_waiting_tasks_of_the_queue_only(tenant, other_api):
    waiting = [
        make_task(tenant=tenant, url=URL, queue="bulk"),
        make_task(tenant=tenant, url=URL, queue="bulk", status=TaskStatus.RETRYING),
        make_task(tenant=tenant, url=URL, queue="bulk", status=TaskStatus.QUEUED, locked_by="tok"),
        make_task(tenant=other_api.tenant, url=URL, queue="bulk"),
    ]
    running = make_task(tenant=tenant, url=URL, queue="bulk", status=TaskStatus.RUNNING)
    done = make_task(tenant=tenant, url=URL, queue="bulk", status=TaskStatus.SUCCEEDED)
    elsewhere = make_task(tenant=tenant, url=URL, queue="default")

    assert queue_purge(name="bulk", actor_type="user", actor="op") == 4

    statuses = dict(CallbackTask.objects.values_list("id", "status"))
    assert {statuses[task.id] for task in waiting} == {TaskStatus.CANCELLED}
    assert statuses[running.id] == TaskStatus.RUNNING
    assert statuses[done.id] == TaskStatus.SUCCEEDED
    assert statuses[elsewhere.id] == TaskStatus.SCHEDULED
    assert TaskEvent.objects.filter(to_status=TaskStatus.CANCELLED).count() == 4
    assert CallbackTask.objects.get(id=waiting[2].id).locked_by == ""
    assert AuditLog.objects.get(action="queue.purge").after["cancelled"] == 4


@pytest.mark.django_db
def test_a_purged_queued_task_is_not_started_by_its_worker(tenant):
    task = make_task(tenant=tenant, url=URL, queue="bulk")
    (claim,) = leases.claim_due(limit=10)

    queue_purge(name="bulk", actor_type="user", actor="op")

    assert leases.start_claimed(token=claim.token, task_ids=claim.task_ids) == []
    assert CallbackTask.objects.get(id=task.id).status == TaskStatus.CANCELLED


@pytest.mark.django_db
def test_purge_goes_in_batches(tenant, monkeypatch):
    monkeypatch.setattr("callbacks.services.queues.PURGE_BATCH", 3)
    make_tasks(7, tenant=tenant, url=URL, queue="bulk")

    assert queue_purge(name="bulk", actor_type="user", actor="op") == 7
    assert not CallbackTask.objects.exclude(status=TaskStatus.CANCELLED).exists()


@pytest.mark.django_db
def test_api_lists_the_tenant_s_queues_with_counts_and_paused_flag(api, tenant, other_api):
    make_tasks(2, tenant=tenant, url=URL, queue="bulk")
    make_task(tenant=tenant, url=URL, queue="bulk", status=TaskStatus.RETRYING)
    make_task(tenant=tenant, url=URL, queue="bulk", status=TaskStatus.SUCCEEDED)
    make_tasks(5, tenant=other_api.tenant, url=URL, queue="bulk")
    make_task(tenant=other_api.tenant, url=URL, queue="theirs")
    queue_pause(name="bulk", actor_type="user", actor="op")

    response = api.get("/api/v1/queues/")

    assert response.status_code == 200
    queues = {item["name"]: item for item in response.json()["queues"]}
    assert set(queues) == {"bulk", "default"}
    assert queues["bulk"] == {
        "name": "bulk",
        "paused": True,
        "counts": {"scheduled": 2, "queued": 0, "running": 0, "retrying": 1},
    }
    assert queues["default"]["paused"] is False


@pytest.mark.django_db
def test_api_purge_cancels_only_the_caller_s_tasks(api, tenant, other_api):
    mine = make_tasks(2, tenant=tenant, url=URL, queue="bulk")
    theirs = make_task(tenant=other_api.tenant, url=URL, queue="bulk")

    response = api.post("/api/v1/queues/bulk/purge/")

    assert response.status_code == 200
    assert response.json() == {"queue": "bulk", "cancelled": 2}
    assert {CallbackTask.objects.get(id=t.id).status for t in mine} == {TaskStatus.CANCELLED}
    assert CallbackTask.objects.get(id=theirs.id).status == TaskStatus.SCHEDULED
    audit = AuditLog.objects.get(action="queue.purge")
    assert audit.actor_type == "tenant" and audit.tenant_id == tenant.id
    assert api.post("/api/v1/queues/BAD!/purge/").status_code == 400


@pytest.mark.django_db
def test_the_api_cannot_pause_a_queue(api):
    assert api.post("/api/v1/queues/bulk/pause/").status_code == 404
    assert not QueueState.objects.filter(paused=True).exists()


@pytest.mark.django_db
def test_queue_command(tenant):
    make_tasks(2, tenant=tenant, url=URL, queue="bulk")
    out = StringIO()

    call_command("queue", "pause", "bulk", stdout=out)
    call_command("queue", "list", stdout=out)
    call_command("queue", "resume", "bulk", stdout=out)
    call_command("queue", "purge", "bulk", "--tenant", tenant.name, stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0] == "queue bulk: paused"
    assert any(line.split()[:3] == ["bulk", "paused", "2"] for line in lines)
    assert "queue bulk: running" in lines
    assert lines[-1] == "queue bulk: 2 waiting callbacks cancelled"
    assert AuditLog.objects.filter(actor="manage.py").count() == 3
    with pytest.raises(CommandError):
        call_command("queue", "pause")
    with pytest.raises(CommandError):
        call_command("queue", "purge", "bulk", "--tenant", "nobody")


@pytest.mark.django_db
def test_a_callback_naming_an_undeclared_queue_is_refused_naming_the_field(api):
    response = api.post("/api/v1/callbacks/", {"url": URL, "queue": "nobody-serves-this"}, format="json")

    assert response.status_code == 400, response.content
    assert set(response.json()["error"]["fields"]) == {"queue"}
    batch = api.post(
        "/api/v1/callbacks/batch/",
        {"callbacks": [{"url": URL}, {"url": URL, "queue": "nobody-serves-this"}]},
        format="json",
    )
    assert batch.status_code == 400
    assert batch.json()["error"]["fields"] == {"callbacks": {"1": {"queue": [ANY]}}}
    assert not CallbackTask.objects.exists()
    assert api.post("/api/v1/callbacks/", {"url": URL, "queue": "bulk"}, format="json").status_code == 201
    assert api.post("/api/v1/callbacks/", {"url": URL}, format="json").status_code == 201  # default


@pytest.mark.django_db
def test_a_schedule_naming_an_undeclared_queue_is_refused(api):
    body = {"name": "n", "cron": "0 * * * *", "task_template": {"url": URL, "queue": "nobody-serves-this"}}

    response = api.post("/api/v1/schedules/", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {"task_template": {"queue": [ANY]}}


@pytest.mark.django_db
def test_operators_declare_queues_with_the_command(api):
    out = StringIO()
    call_command("queue", "create", "reports", stdout=out)
    call_command("queue", "create", "reports", stdout=out)

    assert out.getvalue().splitlines() == ["queue reports: declared", "queue reports: already declared"]
    assert AuditLog.objects.filter(action="queue.create", object_id="reports").count() == 1
    assert api.post("/api/v1/callbacks/", {"url": URL, "queue": "reports"}, format="json").status_code == 201
    with pytest.raises(CommandError, match="no such queue"):
        call_command("queue", "pause", "unheard-of")
    with pytest.raises(CommandError):
        call_command("queue", "create", "Not A Queue!")
