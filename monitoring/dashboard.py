"""The operator dashboard (/admin/dashboard/): delivery charts over a window, what waits and why,
breakers, processes; narrowed to a tenant, a queue or an origin.

The figures come from the roll-ups (monitoring.selectors) and a few small queries, cached for
CACHE_SECONDS per window and filters: several operators watching the page cost one aggregation,
not one each. The page refreshes itself every REFRESH_SECONDS (callbacks/static/console/refresh.js
swaps the regions marked data-refresh in place); without JavaScript it is a plain page with
links, a form and a refresh link.
"""

from collections import defaultdict
from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.core.cache import cache
from django.db.models import Count
from django.template.response import TemplateResponse

from callbacks.domain.vocabulary import UNFINISHED_STATUSES
from callbacks.labels import host_of
from callbacks.models import BreakerState, CallbackTask, Tenant
from callbacks.queues import declared_queues
from callbacks.services.breakers import breaker_list
from monitoring import backlog, heartbeats, selectors
from monitoring.charts import delivery_charts
from monitoring.origins import OriginField, known_origins, origin_page_url

CACHE_SECONDS = 10
REFRESH_SECONDS = 10
# window -> (span, step). Steps of whole hours read hour roll-ups (cheap over days); shorter windows
# read minute rows, a few hundred of them at most.
WINDOWS = {
    "15m": (timedelta(minutes=15), timedelta(minutes=1)),
    "1h": (timedelta(hours=1), timedelta(minutes=2)),
    "6h": (timedelta(hours=6), timedelta(minutes=10)),
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "7d": (timedelta(days=7), timedelta(hours=6)),
}
DEFAULT_WINDOW = "1h"
BREAKERS_SHOWN = 20


class DashboardFilters(forms.Form):
    """What the page is narrowed to; a bad value is named with its reason and left out."""

    tenant = forms.ModelChoiceField(
        Tenant.objects.order_by("name"), required=False, empty_label="every tenant"
    )
    queue = forms.ChoiceField(required=False)
    origin = OriginField(
        required=False,
        widget=forms.TextInput(attrs={"list": "tc-origins", "placeholder": "every origin", "size": 34}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["queue"].choices = [("", "every queue"), *((name, name) for name in declared_queues())]

    def chosen(self) -> dict:
        """The valid filters: {"tenant": Tenant | None, "queue": str, "origin": str}."""
        self.is_valid()
        cleaned = getattr(self, "cleaned_data", {})
        if cleaned.get("origin"):
            # Shown as the engine writes it: what was typed may have been any URL of the origin.
            self.data = self.data.copy()
            self.data["origin"] = cleaned["origin"]
        return {
            "tenant": cleaned.get("tenant"),
            "queue": cleaned.get("queue") or "",
            "origin": cleaned.get("origin") or "",
        }


def dashboard_data(window: str, *, tenant=None, queue: str = "", origin: str = "") -> dict:
    """Everything the page shows for one window and filters, from the cache when it is fresh."""
    key = f"tc-dashboard:{window}:{getattr(tenant, 'pk', '') or ''}:{queue}:{origin}"
    return cache.get_or_set(
        key, lambda: _compute(window, tenant=tenant, queue=queue, origin=origin), CACHE_SECONDS
    )


def _compute(window: str, *, tenant, queue: str, origin: str) -> dict:
    span, step = WINDOWS[window]
    # Roll-ups count attempts by host (callbacks.labels.host_of), not by scheme and port.
    host = host_of(origin) if origin else None
    narrowed = {"tenant": tenant, "queue": queue or None, "host": host}
    return {
        "summary": selectors.stats(window=span, **narrowed),
        "points": selectors.timeseries(window=span, step=step, **narrowed),
        "depth": _queue_depth(tenant=tenant, queue=queue, origin=origin),
        "backlog": backlog.backlog(tenant=tenant, queue=queue, origin=origin),
        "breakers": _breakers(tenant=tenant, origin=origin),
        "processes": {
            role: [
                {"name": beat.name, "seen_at": beat.seen_at, "started_at": beat.started_at, "info": beat.info}
                for beat in heartbeats.alive(role=role)
            ]
            for role in (heartbeats.WORKER, heartbeats.DISPATCHER)
        },
    }


def _queue_depth(*, tenant, queue: str, origin: str) -> dict:
    """Unfinished tasks by queue and status: the partial indexes of the claim and the reaper cover these."""
    tasks = backlog.narrowed(
        CallbackTask.objects.filter(status__in=UNFINISHED_STATUSES), tenant, queue, origin
    )
    rows = tasks.values("queue", "status").annotate(n=Count("id")).order_by()
    by_queue = defaultdict(lambda: dict.fromkeys(UNFINISHED_STATUSES, 0))
    totals = dict.fromkeys(UNFINISHED_STATUSES, 0)
    for row in rows:
        by_queue[row["queue"]][row["status"]] = row["n"]
        totals[row["status"]] += row["n"]
    return {
        "statuses": [str(status) for status in UNFINISHED_STATUSES],
        "queues": [
            {"name": name, "counts": list(counts.values())} for name, counts in sorted(by_queue.items())
        ],
        "totals": list(totals.values()),
        "in_flight": sum(n for status, n in totals.items() if status in ("queued", "running")),
    }


def _breakers(*, tenant, origin: str) -> dict:
    breakers = breaker_list(tenant=tenant)
    if origin:
        breakers = breakers.filter(origin=origin)
    counts = dict(breakers.order_by().values_list("state").annotate(n=Count("id")))
    not_closed = breakers.exclude(state=BreakerState.CLOSED).order_by("-opened_at")
    rows = list(
        not_closed.values("id", "origin", "state", "consecutive_failures", "opened_at", "next_probe_at")[
            :BREAKERS_SHOWN
        ]
    )
    for row in rows:
        row["page"] = origin_page_url(row["origin"])
    return {"counts": {state: counts.get(state, 0) for state in BreakerState.values}, "not_closed": rows}


def dashboard_view(request):
    """Wrapped in admin.site.admin_view in taskcenter/urls.py: staff only, never cached by browsers."""
    window = request.GET.get("window", DEFAULT_WINDOW)
    if window not in WINDOWS:
        window = DEFAULT_WINDOW
    form = DashboardFilters(request.GET or None)
    chosen = form.chosen()
    data = dashboard_data(window, **chosen)
    query = {name: getattr(value, "pk", value) for name, value in chosen.items() if value}
    context = {
        **admin.site.each_context(request),
        "title": "Delivery dashboard",
        "form": form,
        "filtered": bool(query),
        "host": host_of(chosen["origin"]) if chosen["origin"] else "",
        "origin_page": origin_page_url(chosen["origin"]) if chosen["origin"] else "",
        "origins": known_origins(),
        "window": window,
        "windows": [(name, "?" + urlencode({**query, "window": name})) for name in WINDOWS],
        "here": "?" + urlencode({**query, "window": window}),
        "step_seconds": int(WINDOWS[window][1].total_seconds()),
        "charts": delivery_charts(data["points"]),
        "cache_seconds": CACHE_SECONDS,
        "refresh_seconds": REFRESH_SECONDS,
        **data,
    }
    return TemplateResponse(request, "admin/monitoring/dashboard.html", context)
