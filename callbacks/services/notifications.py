"""Failure notifications: events posted to a tenant's notification_url.

An event is an ordinary callback task to that URL, so it is signed, retried and recorded by the
normal pipeline, like Svix's operational webhooks. A notification about a notification is never
made: notification tasks carry NOTIFICATION_PREFIX in business_id and are skipped.
"""

import logging
import uuid

from django.utils import timezone

from callbacks.domain.urls import url_origin
from callbacks.domain.vocabulary import UNFINISHED_STATUSES, ActorType
from callbacks.labels import host_of
from callbacks.models import CallbackTask, GoneUrl, Tenant
from callbacks.selectors import own_origin_error
from callbacks.services.tasks import task_create

logger = logging.getLogger(__name__)

NOTIFICATION_PREFIX = "tc-notification:"
CALLBACK_DEAD = "callback.dead"
BREAKER_OPENED = "breaker.opened"
URL_GONE = "url.gone"
EVENT_TYPES = (CALLBACK_DEAD, BREAKER_OPENED, URL_GONE)


def is_notification(task: CallbackTask) -> bool:
    return task.business_id.startswith(NOTIFICATION_PREFIX)


def notify_failure(
    *, tenant: Tenant, event_type: str, data: dict, dedup_key: str | None = None
) -> CallbackTask | None:
    """Queue the event for the tenant's notification URL; None when the tenant has none.

    `dedup_key` makes a repeated call for the same event return the task already made.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    if not tenant.notification_url:
        return None
    event = {"type": event_type, "timestamp": timezone.now().isoformat(), "data": data}
    task, _ = task_create(
        tenant=tenant,
        data={
            "url": tenant.notification_url,
            "method": "POST",
            "body": event,
            "body_format": "json",
            "business_id": f"{NOTIFICATION_PREFIX}{event_type}",
            "trace_id": data.get("trace_id") or uuid.uuid4().hex,
            "idempotency_key": f"{NOTIFICATION_PREFIX}{dedup_key}" if dedup_key else None,
        },
        actor_type=ActorType.SYSTEM,
        actor="callbacks.services.notifications",
        strict_idempotency=False,  # the same event told again has another timestamp
    )
    return task


def notify_dead(*, task: CallbackTask) -> CallbackTask | None:
    """A dead letter: tell its tenant, unless the dead task was itself a notification."""
    if is_notification(task):
        return None
    tenant = Tenant.objects.filter(pk=task.tenant_id).exclude(notification_url="").first()
    if tenant is None:
        return None
    return notify_failure(
        tenant=tenant,
        event_type=CALLBACK_DEAD,
        data={
            "task_id": str(task.id),
            "url": task.url,
            "business_id": task.business_id,
            "trace_id": task.trace_id,
            "attempts": task.attempts,
            "last_status_code": task.last_status_code,
            "last_outcome": task.last_outcome,
            "last_error": task.last_error[:500],
        },
        dedup_key=f"{CALLBACK_DEAD}:{task.id}",
    )


def notify_breaker_opened(*, origin: str, data: dict | None = None) -> list[CallbackTask]:
    """A breaker opened: tell every tenant with unfinished tasks to that origin.

    A tenant whose own notification URL is on that origin is skipped: the event could not
    arrive, and its failure would feed the same breaker.
    """
    tenant_ids = (
        CallbackTask.objects.filter(
            origin=origin,
            status__in=UNFINISHED_STATUSES,
        )
        .values_list("tenant_id", flat=True)
        .distinct()
    )
    opened_at = timezone.now()
    made = []
    for tenant in Tenant.objects.filter(pk__in=list(tenant_ids)).exclude(notification_url=""):
        if host_of(url_origin(tenant.notification_url)) == host_of(origin):
            continue
        # The breaker's own last error may be another tenant's: each is told the last of its own.
        own = {**(data or {}), "last_error": own_origin_error(tenant=tenant, origin=origin)}
        task = notify_failure(
            tenant=tenant,
            event_type=BREAKER_OPENED,
            data={"origin": origin, "opened_at": opened_at.isoformat(), **own},
        )
        if task is not None:
            made.append(task)
    return made


def notify_gone(*, tenant: Tenant, gone: GoneUrl) -> CallbackTask | None:
    """A URL of the tenant's answered 410 and is no longer called: tell the tenant, once per mark. Not
    when the gone URL is the notification URL itself (the event could not arrive)."""
    if gone.url == tenant.notification_url:
        return None
    return notify_failure(
        tenant=tenant,
        event_type=URL_GONE,
        data={"url": gone.url, "task_id": str(gone.task_id or ""), "marked_at": gone.marked_at.isoformat()},
        dedup_key=f"{URL_GONE}:{gone.task_id}",
    )
