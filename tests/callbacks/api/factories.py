"""Tasks and attempts in any state, made the way the service makes them, then moved where a test needs them
(the worker, which is not part of these tests, would move them there)."""

from datetime import timedelta

from django.utils import timezone

from callbacks.domain.vocabulary import FINAL_STATUSES
from callbacks.models import CallbackTask, Outcome, TaskExecution, TaskStatus
from callbacks.services.tasks import task_create


def make_task(*, tenant, status=TaskStatus.SCHEDULED, attempts=0, **data) -> CallbackTask:
    data.setdefault("url", "http://127.0.0.1:9/hook")
    task, _ = task_create(tenant=tenant, data=data, actor="factory")
    changes = {"status": status, "attempts": attempts}
    if status in FINAL_STATUSES:
        changes["finished_at"] = timezone.now()
    if status in (TaskStatus.QUEUED, TaskStatus.RUNNING):
        changes["locked_until"] = timezone.now() + timedelta(minutes=2)
        changes["locked_by"] = "token-1"
    CallbackTask.objects.filter(pk=task.pk).update(**changes)
    task.refresh_from_db()
    return task


def make_execution(*, task, attempt, outcome=Outcome.HTTP_5XX, status_code=503, **fields) -> TaskExecution:
    return TaskExecution.objects.create(
        task=task,
        tenant=task.tenant,
        attempt=attempt,
        started_at=fields.pop("started_at", timezone.now()),
        duration_ms=12.5,
        outcome=outcome,
        status_code=status_code,
        request_method=task.method,
        request_url=task.url,
        request_headers={"Authorization": "********", "X-Callback-Attempt": str(attempt)},
        response_headers={"Content-Type": "text/plain"},
        response_body="busy",
        **fields,
    )
