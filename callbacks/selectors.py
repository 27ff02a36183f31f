"""Reads. Queries that views, admin, commands and the engine share (HackSoft's selectors)."""

import uuid
from datetime import datetime

from django.db.models import Min, OuterRef, QuerySet, Subquery
from django.utils import timezone

from callbacks import keys
from callbacks.domain.urls import url_origin
from callbacks.errors import NotFoundError
from callbacks.models import (
    CallbackSchedule,
    CallbackTask,
    GoneUrl,
    TaskEvent,
    TaskExecution,
    TaskOrigin,
    TaskSearchPath,
    Tenant,
    TenantApiKey,
    UrlWhitelistEntry,
)


def uuid_key(key) -> uuid.UUID:
    return key if isinstance(key, uuid.UUID) else uuid.UUID(str(key))


def int_key(key) -> int:
    return int(str(key))


def row_get(queryset: QuerySet, *, key, parse, missing: str):
    """The row of `queryset` whose pk is `key` read by `parse`, else NotFoundError(missing). A key
    that does not parse is as missing as one that matches nothing; scoped to a tenant, so is
    another tenant's row."""
    try:
        pk = parse(key)
    except ValueError:
        raise NotFoundError(missing) from None
    row = queryset.filter(pk=pk).first()
    if row is None:
        raise NotFoundError(missing)
    return row


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
    return row_get(
        CallbackTask.objects.filter(tenant=tenant), key=task_id, parse=uuid_key, missing="No such callback."
    )


def execution_list(*, task: CallbackTask) -> QuerySet[TaskExecution]:
    """The task's attempts, oldest first."""
    return TaskExecution.objects.filter(task=task).order_by("attempt", "started_at", "id")


# Trigrams are three characters: a shorter fragment would read the whole trigram index, so one or two
# characters match a whole business or trace id only, never a part of a URL.
MIN_URL_FRAGMENT = 3
# An id's first four hex digits narrow a million tasks to about fifteen; one would match a sixteenth of
# them, to be sorted for a page that says nothing. The list shows eight.
MIN_ID_PREFIX = 4


def task_search(queryset: QuerySet[CallbackTask], term: str) -> QuerySet[CallbackTask]:
    """The tasks of `queryset` matching what an operator or tenant typed: an id or its first characters
    (four or more), a whole business id or trace id, or (from three characters on, whatever the case) a
    part of the URL's origin ("shop-42.example"), a part of what follows it ("/orders/17?x=1"), or a
    whole URL.

    Each kind is looked up through an index of its own and the ids found are put together before
    `queryset` filters them, since one OR over the columns would scan the table: ids through the primary
    key, business and trace ids through task_business_idx and task_trace_idx (whichever the tenant),
    host fragments in TaskOrigin, paths through the trigram index of TaskSearchPath (PostgreSQL); neither
    of these two is written when a task's status changes. The cost grows with the rows a term matches over
    every tenant: "/webhooks", in most URLs, is slow on a big table."""
    term = term.strip()
    if not term:
        return queryset
    tasks = queryset.order_by()
    matches = [tasks.filter(business_id=term).values("pk"), tasks.filter(trace_id=term).values("pk")]
    prefix = term.lower().replace("-", "")
    if MIN_ID_PREFIX <= len(prefix) <= 32 and all(c in "0123456789abcdef" for c in prefix):
        # An id's first characters: a range of the primary key, which its index answers.
        low = uuid.UUID(prefix.ljust(32, "0"))
        high = uuid.UUID(prefix.ljust(32, "f"))
        matches.append(tasks.filter(pk__gte=low, pk__lte=high).values("pk"))
    if len(term) >= MIN_URL_FRAGMENT:
        matches += _url_matches(tasks, term)
    return queryset.filter(pk__in=_ids_or_union(matches))


# A term matching up to this many tasks per kind is looked up kind by kind and the tasks named by id.
FEW_IDS = 1000


def _ids_or_union(matches: list[QuerySet]):
    """The ids the lookups find, when each finds a few (one query each, all short), else their UNION ALL
    as a subquery. Named ids keep the page's query small: given the union, PostgreSQL plans parallel
    workers for it, whose start (15-20 ms) costs several times the lookups themselves."""
    ids = []
    for match in matches:
        found = list(match.values_list(match.query.values_select[0], flat=True)[: FEW_IDS + 1])
        if len(found) > FEW_IDS:
            return matches[0].union(*matches[1:], all=True)
        ids += found
    return ids


def _url_matches(tasks: QuerySet[CallbackTask], term: str) -> list[QuerySet]:
    fragment = term.lower()
    origins = TaskOrigin.objects.filter(origin__contains=fragment).values("origin")
    found = [
        tasks.filter(origin__in=origins).values("pk"),
        TaskSearchPath.objects.filter(path__contains=fragment).values("task_id"),
    ]
    if "://" in term:
        # A whole URL, or its start: the tasks of its origin (task_origin_status_idx), whose URL starts so.
        try:
            origin = url_origin(term)
        except ValueError:
            return found
        found.append(tasks.filter(origin=origin, url__istartswith=term).values("pk"))
    return found


def task_timeline(*, task: CallbackTask) -> dict:
    """The task's attempts on one time line: when each started and ended, the wait before it (since the
    task became due for the first, since the previous attempt ended for the others) and why it ended;
    then what comes next. `position` places each attempt along the whole span, 0 to 100."""
    from datetime import timedelta

    from callbacks.domain.vocabulary import FINAL_STATUSES, OUTCOME_MEANINGS, OUTCOME_TONES, STATUS_MEANINGS

    attempts, previous_end = [], task.run_at
    for execution in execution_list(task=task):
        ended = execution.started_at + timedelta(milliseconds=execution.duration_ms or 0)
        attempts.append(
            {
                "execution": execution,
                "started_at": execution.started_at,
                "ended_at": ended,
                "wait_seconds": max((execution.started_at - previous_end).total_seconds(), 0.0),
                "why": OUTCOME_MEANINGS.get(execution.outcome, execution.outcome),
                "tone": OUTCOME_TONES.get(execution.outcome, "retry"),
            }
        )
        previous_end = max(previous_end, ended)
    start = task.run_at
    end = task.next_attempt_at if task.status not in FINAL_STATUSES and task.next_attempt_at else previous_end
    end = max(end, previous_end, start)
    whole = (end - start).total_seconds() or 1.0
    for item in attempts:
        item["position"] = round(100 * (item["started_at"] - start).total_seconds() / whole, 2)
    upcoming = None
    if task.status not in FINAL_STATUSES and task.next_attempt_at:
        upcoming = {
            "at": task.next_attempt_at,
            "wait_seconds": max((task.next_attempt_at - previous_end).total_seconds(), 0.0),
            "position": round(100 * (task.next_attempt_at - start).total_seconds() / whole, 2),
        }
    return {
        "attempts": attempts,
        "upcoming": upcoming,
        "start": start,
        "end": end,
        "status": task.status,
        "status_meaning": STATUS_MEANINGS.get(task.status, ""),
    }


# What a tenant is shown of an origin's failures: the errors of its own callbacks only. A breaker is
# shared by every tenant calling the origin, and its last error may be another tenant's (its paths, its
# receiver's answers to it).


def own_origin_error(*, tenant: Tenant, origin: str) -> str:
    """The last error the tenant's own callbacks to `origin` saw; "" when none failed."""
    return _own_errors(tenant, origin).values_list("last_error", flat=True).first() or ""


def own_origin_error_column(*, tenant: Tenant) -> Subquery:
    """own_origin_error as a column of a query over rows with an `origin` (breakers); NULL when none."""
    return Subquery(_own_errors(tenant, OuterRef("origin")).values("last_error")[:1])


def _own_errors(tenant: Tenant, origin) -> QuerySet[CallbackTask]:
    return (
        CallbackTask.objects.filter(tenant=tenant, origin=origin)
        .exclude(last_error="")
        .order_by("-updated_at")
    )


def event_list(*, task: CallbackTask) -> QuerySet[TaskEvent]:
    """The task's status changes, oldest first."""
    return TaskEvent.objects.filter(task=task).order_by("at", "id")


def schedule_list(*, tenant):
    return CallbackSchedule.objects.filter(tenant=tenant).order_by("-created_at", "-id")


def schedule_get(*, tenant, schedule_id) -> CallbackSchedule:
    """The tenant's schedule; another tenant's is as missing as one that never existed."""
    return row_get(
        CallbackSchedule.objects.filter(tenant=tenant),
        key=schedule_id,
        parse=uuid_key,
        missing="No such schedule.",
    )


def gone_url_list(*, tenant=None) -> QuerySet:
    """URLs marked gone (410), newest first: the tenant's, or every tenant's (operators)."""
    rows = GoneUrl.objects.select_related("tenant")
    return rows.filter(tenant=tenant) if tenant is not None else rows


def gone_url_get(*, tenant, gone_id) -> GoneUrl:
    """The tenant's gone mark; another tenant's is as missing as one that never existed."""
    return row_get(
        GoneUrl.objects.filter(tenant=tenant), key=gone_id, parse=int_key, missing="No such gone URL."
    )


def whitelist_entry_get(*, tenant, entry_id) -> UrlWhitelistEntry:
    """The tenant's whitelist entry; another tenant's is as missing as one that never existed."""
    return row_get(
        UrlWhitelistEntry.objects.filter(tenant=tenant),
        key=entry_id,
        parse=int_key,
        missing="No such whitelist entry.",
    )


def schedule_next_fire_at(*, after: datetime) -> datetime | None:
    """When the next schedule fires after `after`, for the dispatcher's sleep, which asks from the
    time its step fired schedules up to (not from now: a fire falling due in between would be seen
    by neither): what was due then was fired, and one that failed is tried again at the next poll
    rather than in a tight loop."""
    pending = CallbackSchedule.objects.filter(paused=False, next_fire_at__gt=after)
    return pending.aggregate(at=Min("next_fire_at"))["at"]


def client_certificates_expiring(*, now: datetime | None = None) -> list[dict]:
    """Active tenants whose client certificate expires within EXPIRY_WARNING (or has expired),
    soonest first: name and expiry, nothing of the certificate itself."""
    # Here, not with this module: the certificates module brings cryptography's x509, which
    # processes reading tasks (the dispatcher) never need.
    from callbacks.domain.certificates import EXPIRY_WARNING

    now = now or timezone.now()
    return list(
        Tenant.objects.filter(is_active=True, client_certificate_expires_at__lte=now + EXPIRY_WARNING)
        .order_by("client_certificate_expires_at")
        .values("name", "client_certificate_expires_at")
    )
