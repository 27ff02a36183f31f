"""An origin's page (/admin/origins/<origin>/) and the list that finds one (/admin/origins/).

One receiver origin seen whole: its breaker and the breaker's history, the limits the claim
applies to it now (read through the claim's own Round, monitoring.backlog.limits_now), what is in
flight there (lanes and leased tasks), what waits and why, its latest attempts, and its success
rate and latency over a window. Staff only: taskcenter/urls.py wraps both views in
admin.site.admin_view.
"""

import json
from datetime import timedelta

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.cache import cache
from django.db.models import Count
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils import timezone

from callbacks import conf
from callbacks.domain.vocabulary import LEASED_STATUSES, UNFINISHED_STATUSES
from callbacks.labels import host_of
from callbacks.models import (
    AuditLog,
    BreakerState,
    CallbackTask,
    CircuitBreaker,
    Lane,
    RuntimeSetting,
    TaskExecution,
    Tenant,
)
from callbacks.services.notifications import BREAKER_OPENED, NOTIFICATION_PREFIX
from monitoring import backlog, charts, dashboard, selectors
from monitoring.origins import OriginField, known_origins, origin_page_url, parse_origin

ATTEMPTS_SHOWN = 50
IN_FLIGHT_SHOWN = 50
HISTORY_SHOWN = 50
LIMIT_KEYS = ("MAX_CONCURRENCY_PER_ORIGIN", "RATE_LIMIT_PER_ORIGIN")


def limits(origin: str, *, now, breaker: CircuitBreaker | None) -> dict:
    """What the claim allows the origin now, and why it takes nothing more at this instant (if so)."""
    state = backlog.limits_now(now=now)
    overridden = set(RuntimeSetting.objects.filter(key__in=LIMIT_KEYS).values_list("key", flat=True))
    if origin in state.gate.blocked:
        closed = "its breaker holds it"
    elif origin in state.gate.probe:
        closed = "one probe may go"
    elif origin in state.closed_origins:
        closed = "at its concurrency or rate limit"
    else:
        closed = ""
    tenant_ids = set(
        CallbackTask.objects.filter(origin=origin, status__in=UNFINISHED_STATUSES)
        .values_list("tenant_id", flat=True)
        .distinct()
    ) | {tenant_id for share_origin, tenant_id in state.by_share if share_origin == origin}
    shares = [
        {
            "tenant": tenant,
            "concurrency": tenant.max_concurrency_per_origin,
            "rate": tenant.rate_limit_per_origin,
            "in_use": state.by_share.get((origin, tenant.pk), 0),
            "closed": (origin, tenant.pk) in state.closed_shares,
        }
        for tenant in Tenant.objects.filter(pk__in=tenant_ids).order_by("name")
    ]
    return {
        "concurrency": state.limit_of(origin),
        "configured": state.origin_limit,
        "configured_from": "run-time setting" if LIMIT_KEYS[0] in overridden else "installation setting",
        "slowed": breaker.concurrency_limit if breaker else None,
        "rate": conf.get("RATE_LIMIT_PER_ORIGIN") or None,
        "rate_from": "run-time setting" if LIMIT_KEYS[1] in overridden else "installation setting",
        "in_use": state.by_origin.get(origin, 0),
        "closed": closed,
        "shares": shares,
    }


# A breaker.opened notification is made after the opening commits: within this of it.
NOTIFICATION_WITHIN = timedelta(minutes=1)


def breaker_history(origin: str, breaker: CircuitBreaker | None) -> list[dict]:
    """Newest first: the breaker's rows of the audit log (each opening, written by the engine, and
    operators' resets), each opening with the tenants told of it (its breaker.opened notifications,
    made just after it)."""
    entries = []
    if breaker is not None:
        for row in AuditLog.objects.filter(object_type="circuitbreaker", object_id=str(breaker.pk)).order_by(
            "-at"
        )[:HISTORY_SHOWN]:
            opening = row.action == "breaker.opened"
            entries.append(
                {
                    "at": row.at,
                    "what": row.action,
                    "who": "the engine" if opening else f"{row.actor} ({row.actor_type})",
                    "detail": _opened(row.after or {}) if opening else _change(row.before, row.after),
                    "told": [],
                }
            )
    openings = [entry for entry in entries if entry["what"] == "breaker.opened"]
    # Through task_tenant_business_idx: the tenants are few, their notifications fewer.
    notified = CallbackTask.objects.filter(
        tenant_id__in=Tenant.objects.values("pk"),
        business_id=f"{NOTIFICATION_PREFIX}{BREAKER_OPENED}",
        payload__contains=f'"origin":{json.dumps(origin, ensure_ascii=False)}',
    ).select_related("tenant")
    untracked: dict = {}
    for task in notified.order_by("-created_at")[:HISTORY_SHOWN]:
        told = {"tenant": task.tenant.name, "status": task.status, "task_id": task.pk}
        entry = _opening_told(openings, task.created_at)
        if entry is None:  # an opening from before the engine wrote them to the audit log
            data = _event_data(task.payload)
            entry = untracked.setdefault(
                data.get("opened_at") or task.created_at.isoformat(),
                {
                    "at": task.created_at,
                    "what": "breaker.opened",
                    "who": "the engine",
                    "detail": _opened(data),
                    "told": [],
                },
            )
        entry["told"].append(told)
    entries += untracked.values()
    return sorted(entries, key=lambda entry: entry["at"], reverse=True)[:HISTORY_SHOWN]


def _opening_told(openings: list[dict], notified_at):
    """The opening a notification made at `notified_at` tells of: the latest one at most a minute before."""
    for entry in openings:  # newest first
        if entry["at"] <= notified_at <= entry["at"] + NOTIFICATION_WITHIN:
            return entry
    return None


def _event_data(payload: str) -> dict:
    try:
        return json.loads(payload).get("data") or {}
    except (ValueError, AttributeError):
        return {}


def _opened(data: dict) -> str:
    parts = []
    if data.get("consecutive_failures"):
        parts.append(f"after {data['consecutive_failures']} failures in a row")
    if data.get("last_error"):
        parts.append(f"last error: {data['last_error']}")
    if data.get("next_probe_at"):
        parts.append(f"probe at {data['next_probe_at']}")
    return "; ".join(parts)


def _change(before: dict | None, after: dict | None) -> str:
    before, after = before or {}, after or {}
    changed = [
        f"{name}: {before.get(name)} → {after.get(name)}"
        for name in ("state", "consecutive_failures", "open_count", "next_probe_at")
        if before.get(name) != after.get(name)
    ]
    return "; ".join(changed)


def in_flight(origin: str, *, now) -> dict:
    lanes = list(
        Lane.objects.filter(origin=origin, expires_at__gt=now).select_related("tenant").order_by("created_at")
    )
    tasks = list(
        CallbackTask.objects.filter(origin=origin, status__in=LEASED_STATUSES)
        .select_related("tenant")
        .order_by("-updated_at")[:IN_FLIGHT_SHOWN]
    )
    counts = dict(
        CallbackTask.objects.filter(origin=origin, status__in=LEASED_STATUSES)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {"lanes": lanes, "tasks": tasks, "counts": counts, "total": sum(counts.values())}


def recent_attempts(origin: str, *, since) -> list[TaskExecution]:
    """The latest attempts to the origin within the page's window: the bound keeps the read to one
    window of execution_started_idx however large the table, whichever way the planner joins."""
    return list(
        TaskExecution.objects.filter(task__origin=origin, started_at__gte=since)
        .select_related("tenant")
        .order_by("-started_at")[:ATTEMPTS_SHOWN]
    )


def origin_data(origin: str, *, window: str) -> dict:
    """Everything the page shows, cached as the dashboard's figures are."""

    def compute():
        now = timezone.now()
        span, step = dashboard.WINDOWS[window]
        host = host_of(origin)
        breaker = CircuitBreaker.objects.filter(origin=origin).first()
        return {
            "breaker": breaker,
            "history": breaker_history(origin, breaker),
            "limits": limits(origin, now=now, breaker=breaker),
            "in_flight": in_flight(origin, now=now),
            "backlog": backlog.backlog(now=now, origin=origin),
            "attempts": recent_attempts(origin, since=now - span),
            "summary": selectors.stats(window=span, host=host, now=now),
            "points": selectors.timeseries(window=span, step=step, host=host, now=now),
        }

    return cache.get_or_set(f"tc-origin:{window}:{origin}", compute, dashboard.CACHE_SECONDS)


def origin_view(request, origin: str):
    try:
        origin = parse_origin(unquote(origin))
    except ValueError:
        raise Http404("Not an origin.") from None
    window = request.GET.get("window", dashboard.DEFAULT_WINDOW)
    if window not in dashboard.WINDOWS:
        window = dashboard.DEFAULT_WINDOW
    data = origin_data(origin, window=window)
    points = data["points"]
    context = {
        **admin.site.each_context(request),
        "title": f"Origin {origin}",
        "origin": origin,
        "host": host_of(origin),
        "window": window,
        "windows": [(name, f"?window={name}") for name in dashboard.WINDOWS],
        "here": f"?window={window}",
        "step_seconds": int(dashboard.WINDOWS[window][1].total_seconds()),
        "charts": [
            charts.success_chart(points),
            charts.latency_chart(points),
            charts.throughput_chart(points),
            charts.errors_chart(points),
        ],
        "cache_seconds": dashboard.CACHE_SECONDS,
        "refresh_seconds": dashboard.REFRESH_SECONDS,
        "open": data["breaker"] is not None and data["breaker"].state != BreakerState.CLOSED,
        **data,
    }
    return TemplateResponse(request, "admin/monitoring/origin.html", context)


class FindOriginForm(forms.Form):
    origin = OriginField(label="Origin or URL")


def origins_view(request):
    """Origins with a breaker or unfinished work; a form goes to any other one's page."""
    form = FindOriginForm(request.GET or None)
    if form.is_valid():
        return HttpResponseRedirect(origin_page_url(form.cleaned_data["origin"]))
    now = timezone.now()
    origins = known_origins()
    state = backlog.limits_now(now=now)
    waiting = {group["name"]: group for group in backlog.backlog(now=now, by="origin")["groups"]}
    breakers = {breaker.origin: breaker for breaker in CircuitBreaker.objects.filter(origin__in=origins)}
    leased = dict(
        CallbackTask.objects.filter(status__in=LEASED_STATUSES, origin__in=origins)
        .values_list("origin")
        .annotate(n=Count("id"))
        .order_by()
    )
    rows = [
        {
            "origin": origin,
            "page": origin_page_url(origin),
            "breaker": breakers.get(origin),
            "concurrency": state.limit_of(origin),
            "slots": state.by_origin.get(origin, 0),
            "leased": leased.get(origin, 0),
            "waiting": waiting.get(origin),
        }
        for origin in origins
    ]
    rows.sort(
        key=lambda row: (row["breaker"] is None or row["breaker"].state == BreakerState.CLOSED, row["origin"])
    )
    context = {
        **admin.site.each_context(request),
        "title": "Receiver origins",
        "form": form,
        "rows": rows,
    }
    return TemplateResponse(request, "admin/monitoring/origins.html", context)
