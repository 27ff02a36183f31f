"""The operator dashboard (/admin/dashboard/): delivery charts over a window, queue depth, breakers, processes.

The figures come from the roll-ups (monitoring.selectors) and a few small queries, cached for
CACHE_SECONDS per window: several operators watching the page cost one aggregation, not one each.
"""

from collections import defaultdict
from datetime import timedelta

from django.contrib import admin
from django.core.cache import cache
from django.db.models import Count
from django.template.response import TemplateResponse

from callbacks.domain.vocabulary import UNFINISHED_STATUSES
from callbacks.models import BreakerState, CallbackTask, CircuitBreaker
from monitoring import heartbeats, selectors
from monitoring.charts import Series, bar_chart, line_chart

CACHE_SECONDS = 10
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


def dashboard_data(window: str) -> dict:
    """Everything the page shows for one window, from the cache when it is fresh."""
    return cache.get_or_set(f"tc-dashboard:{window}", lambda: _compute(window), CACHE_SECONDS)


def _compute(window: str) -> dict:
    span, step = WINDOWS[window]
    return {
        "summary": selectors.stats(window=span),
        "points": selectors.timeseries(window=span, step=step),
        "depth": _queue_depth(),
        "breakers": _breakers(),
        "processes": {
            role: [
                {"name": beat.name, "seen_at": beat.seen_at, "started_at": beat.started_at, "info": beat.info}
                for beat in heartbeats.alive(role=role)
            ]
            for role in (heartbeats.WORKER, heartbeats.DISPATCHER)
        },
    }


def _queue_depth() -> dict:
    """Unfinished tasks by queue and status: the partial indexes of the claim and the reaper cover these."""
    rows = (
        CallbackTask.objects.filter(status__in=UNFINISHED_STATUSES)
        .values("queue", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
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
    }


def _breakers() -> dict:
    counts = dict(CircuitBreaker.objects.values_list("state").annotate(n=Count("id")).order_by())
    not_closed = CircuitBreaker.objects.exclude(state=BreakerState.CLOSED).order_by("-opened_at")
    return {
        "counts": {state: counts.get(state, 0) for state in BreakerState.values},
        "not_closed": list(
            not_closed.values("id", "origin", "state", "consecutive_failures", "opened_at", "next_probe_at")[
                :BREAKERS_SHOWN
            ]
        ),
    }


def charts(points: list[dict]) -> list:
    times = [point["start"] for point in points]
    error_classes = sorted({name for point in points for name in point["errors"]})
    return [
        line_chart(
            title="Throughput",
            times=times,
            series=[Series("attempts/s", [p["qps"] for p in points])],
            unit="attempts/s",
        ),
        line_chart(
            title="Latency percentiles",
            times=times,
            series=[Series(name, [p[name] for p in points]) for name in ("p50", "p95", "p99")],
            unit="ms",
        ),
        line_chart(
            title="Success rate",
            times=times,
            series=[
                Series(
                    "success %",
                    [None if p["success_rate"] is None else p["success_rate"] * 100 for p in points],
                )
            ],
            unit="%",
            y_max=100,
        ),
        bar_chart(
            title="Errors by class",
            times=times,
            stacks={name: [p["errors"].get(name, 0) for p in points] for name in error_classes},
            unit="attempts",
        ),
    ]


def dashboard_view(request):
    """Wrapped in admin.site.admin_view in taskcenter/urls.py: staff only, never cached by browsers."""
    window = request.GET.get("window", DEFAULT_WINDOW)
    if window not in WINDOWS:
        window = DEFAULT_WINDOW
    data = dashboard_data(window)
    context = {
        **admin.site.each_context(request),
        "title": "Delivery dashboard",
        "window": window,
        "windows": list(WINDOWS),
        "step_seconds": int(WINDOWS[window][1].total_seconds()),
        "charts": charts(data["points"]),
        "cache_seconds": CACHE_SECONDS,
        **data,
    }
    return TemplateResponse(request, "admin/monitoring/dashboard.html", context)
