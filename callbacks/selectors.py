"""Reads. Queries that views, admin, commands and the engine share (HackSoft's selectors)."""

import uuid
from datetime import datetime

from django.db.models import Min, QuerySet
from django.utils import timezone

from callbacks import keys
from callbacks.errors import NotFoundError
from callbacks.models import CallbackSchedule, CallbackTask, TaskEvent, TaskExecution, Tenant, TenantApiKey


def api_key_lookup(*, key: str) -> TenantApiKey | None:
    """The active key with this value, with its tenant, or None."""
    if not key.startswith(keys.API_KEY_PREFIX):
        return None
    return (
        TenantApiKey.objects.select_related("tenant")
        .filter(digest=keys.api_key_digest(key), revoked_at__isnull=True, tenant__is_active=True)
        .first()
    )


def task_list(*, tenant: Tenant, filters: dict | None = None) -> QuerySet[CallbackTask]:
    """The tenant's tasks, newest first. filters: status, business_id, trace_id, queue, created_after,
    created_before (inclusive bounds); absent or None means no filter."""
    filters = filters or {}
    queryset = CallbackTask.objects.filter(tenant=tenant)
    for name in ("status", "business_id", "trace_id", "queue"):
        if filters.get(name) is not None:
            queryset = queryset.filter(**{name: filters[name]})
    if filters.get("created_after") is not None:
        queryset = queryset.filter(created_at__gte=filters["created_after"])
    if filters.get("created_before") is not None:
        queryset = queryset.filter(created_at__lte=filters["created_before"])
    return queryset.order_by("-created_at", "-id")


def task_get(*, tenant: Tenant, task_id) -> CallbackTask:
    """The tenant's task with this id. Another tenant's task is as missing as one that never existed."""
    try:
        task_uuid = task_id if isinstance(task_id, uuid.UUID) else uuid.UUID(str(task_id))
    except ValueError:
        raise NotFoundError("No such callback.") from None
    task = CallbackTask.objects.filter(tenant=tenant, pk=task_uuid).first()
    if task is None:
        raise NotFoundError("No such callback.")
    return task


def execution_list(*, task: CallbackTask) -> QuerySet[TaskExecution]:
    """The task's attempts, oldest first."""
    return TaskExecution.objects.filter(task=task).order_by("attempt", "started_at", "id")


def event_list(*, task: CallbackTask) -> QuerySet[TaskEvent]:
    """The task's status changes, oldest first."""
    return TaskEvent.objects.filter(task=task).order_by("at", "id")


def schedule_list(*, tenant):
    return CallbackSchedule.objects.filter(tenant=tenant).order_by("-created_at", "-id")


def schedule_get(*, tenant, schedule_id) -> CallbackSchedule:
    """The tenant's schedule; another tenant's is as missing as one that never existed."""
    try:
        key = schedule_id if isinstance(schedule_id, uuid.UUID) else uuid.UUID(str(schedule_id))
    except ValueError:
        raise NotFoundError("No such schedule.") from None
    schedule = CallbackSchedule.objects.filter(tenant=tenant, pk=key).first()
    if schedule is None:
        raise NotFoundError("No such schedule.")
    return schedule


def schedule_next_fire_at(*, after: datetime | None = None) -> datetime | None:
    """When the next schedule fires after `after` (default now), for the dispatcher's sleep. What is
    due already was fired by the step just taken; one that failed is tried again at the next poll
    rather than in a tight loop."""
    after = after or timezone.now()
    pending = CallbackSchedule.objects.filter(paused=False, next_fire_at__gt=after)
    return pending.aggregate(at=Min("next_fire_at"))["at"]
