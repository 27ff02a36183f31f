"""Cancel and retry: which statuses allow them, what they change, what they record."""

import pytest
from django.utils import timezone

from callbacks.models import AuditLog, CallbackTask, TaskEvent, TaskStatus
from callbacks.services import tasks as task_services
from callbacks.services.tasks import task_cancel, task_retry
from tests.factories import make_task_in_state

CANCELLABLE = [TaskStatus.SCHEDULED, TaskStatus.QUEUED, TaskStatus.RETRYING, TaskStatus.RUNNING]
FINAL_BUT_CANCELLED = [TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.DEAD]
RETRYABLE = [TaskStatus.FAILED, TaskStatus.DEAD, TaskStatus.RETRYING]
NOT_RETRYABLE = [
    TaskStatus.SCHEDULED,
    TaskStatus.QUEUED,
    TaskStatus.RUNNING,
    TaskStatus.SUCCEEDED,
    TaskStatus.CANCELLED,
]


def cancel(api, task):
    return api.post(f"/api/v1/callbacks/{task.id}/cancel/")


def retry(api, task):
    return api.post(f"/api/v1/callbacks/{task.id}/retry/")


@pytest.mark.parametrize("status", CANCELLABLE)
def test_cancel_ends_a_task_that_is_not_final(api, tenant, status):
    task = make_task_in_state(tenant=tenant, status=status)
    response = cancel(api, task)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled" and response.json()["finished_at"] is not None
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    assert task.finished_at is not None
    assert (task.locked_until, task.locked_by) == (None, "")
    event = TaskEvent.objects.filter(task=task).latest("id")
    assert (event.from_status, event.to_status) == (status, "cancelled")
    audit = AuditLog.objects.get(action="task.cancel")
    assert audit.before["status"] == status and audit.after["status"] == "cancelled"
    assert (audit.actor_type, audit.object_id, audit.tenant) == ("tenant", str(task.id), tenant)


def test_cancelling_twice_answers_200_and_changes_nothing(api, tenant):
    task = make_task_in_state(tenant=tenant)
    first = cancel(api, task).json()
    again = cancel(api, task)
    assert again.status_code == 200
    assert again.json()["finished_at"] == first["finished_at"]
    assert TaskEvent.objects.filter(task=task, to_status="cancelled").count() == 1
    assert AuditLog.objects.filter(action="task.cancel").count() == 1


@pytest.mark.parametrize("status", FINAL_BUT_CANCELLED)
def test_cancel_of_a_final_task_is_409(api, tenant, status):
    task = make_task_in_state(tenant=tenant, status=status)
    response = cancel(api, task)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "task_final"
    task.refresh_from_db()
    assert task.status == status
    assert not AuditLog.objects.filter(action="task.cancel").exists()


def test_a_worker_cannot_start_a_task_cancelled_after_its_claim(tenant):
    """The worker's start is conditional on (queued, its claim token): after a cancel it matches nothing."""
    task = make_task_in_state(tenant=tenant, status=TaskStatus.QUEUED)
    task_cancel(task=task, actor="ops")
    started = CallbackTask.objects.filter(pk=task.pk, status=TaskStatus.QUEUED, locked_by="token-1").update(
        status=TaskStatus.RUNNING
    )
    assert started == 0
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED


def test_cancel_works_from_the_status_in_the_database_not_the_callers_copy(tenant):
    task = make_task_in_state(tenant=tenant, status=TaskStatus.QUEUED)
    stale = CallbackTask.objects.get(pk=task.pk)
    CallbackTask.objects.filter(pk=task.pk).update(status=TaskStatus.SUCCEEDED)
    with pytest.raises(task_services.ConflictError):
        task_cancel(task=stale, actor="ops")
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED


@pytest.mark.parametrize("status", RETRYABLE)
def test_retry_schedules_the_task_now(api, tenant, status):
    task = make_task_in_state(tenant=tenant, status=status, attempts=2, max_retries=3)
    response = retry(api, task)
    assert response.status_code == 200
    task.refresh_from_db()
    assert task.status == TaskStatus.SCHEDULED
    assert task.next_attempt_at == task.due_at == task.updated_at
    assert task.finished_at is None
    assert (task.locked_until, task.locked_by) == (None, "")
    assert task.max_retries == 3  # budget left: unchanged
    assert task.attempts == 2  # attempt numbers keep counting
    event = TaskEvent.objects.filter(task=task).latest("id")
    assert (event.from_status, event.to_status) == (status, "scheduled")
    audit = AuditLog.objects.get(action="task.retry")
    assert audit.before["status"] == status and audit.after["status"] == "scheduled"


def test_retrying_a_dead_task_grants_one_more_attempt(tenant):
    task = make_task_in_state(tenant=tenant, status=TaskStatus.DEAD, attempts=4, max_retries=3)
    task = task_retry(task=task, actor_type="user", actor="admin")
    assert task.max_retries == 4 and task.attempts == 4
    audit = AuditLog.objects.get(action="task.retry")
    assert (audit.actor_type, audit.actor) == ("user", "admin")
    assert (audit.before["max_retries"], audit.after["max_retries"]) == (3, 4)


@pytest.mark.parametrize("status", NOT_RETRYABLE)
def test_retry_from_other_statuses_is_409(api, tenant, status):
    task = make_task_in_state(tenant=tenant, status=status)
    response = retry(api, task)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "task_not_retryable"
    task.refresh_from_db()
    assert task.status == status


def test_retry_wakes_the_dispatcher_after_commit(
    api, tenant, django_capture_on_commit_callbacks, monkeypatch
):
    task = make_task_in_state(tenant=tenant, status=TaskStatus.FAILED, attempts=1)
    calls = []
    monkeypatch.setattr(task_services, "notify_due", lambda origins: calls.append(sorted(origins)))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        retry(api, task)
    assert calls == []
    for callback in callbacks:
        callback()
    assert calls == [[task.origin]]  # due now: named for a lane of its origin


def test_a_retried_task_can_be_cancelled_again(api, tenant):
    task = make_task_in_state(tenant=tenant, status=TaskStatus.DEAD, attempts=4)
    assert retry(api, task).status_code == 200
    assert cancel(api, task).status_code == 200
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED and task.finished_at <= timezone.now()
