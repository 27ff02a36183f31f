"""Delivery statistics read from the per-minute and per-hour roll-ups."""

import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.db.models import Max, Q, Sum
from django.utils import timezone

from callbacks.buckets import BUCKET_FIELDS, percentile
from callbacks.domain.vocabulary import Outcome
from callbacks.labels import error_class
from callbacks.models import AttemptRollup
from monitoring import heartbeats

MIN_WINDOW = timedelta(minutes=1)
MAX_WINDOW = timedelta(days=7)
PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99))
_WINDOW = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
HOUR = timedelta(hours=1)


def parse_window(text: str) -> timedelta:
    """ "5m", "6h", "7d" -> timedelta; between 1 minute and 7 days."""
    match = _WINDOW.match(text or "")
    if not match:
        raise ValueError("Use a number and a unit m, h or d, e.g. 5m, 1h, 24h, 7d.")
    out_of_range = ValueError("The window must be between 1m and 7d.")
    try:
        window = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:  # past timedelta's range (a billion days), so past 7d too
        raise out_of_range from None
    if not MIN_WINDOW <= window <= MAX_WINDOW:
        raise out_of_range
    return window


def floor_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + HOUR


def _rollups(*, start, end, tenant=None, queue=None, host=None, hourly_from=None):
    """Roll-up rows of [start, end]: hour rows from `hourly_from` (an hour) on, minute rows before it."""
    if hourly_from is None:
        periods = Q(period_minutes=1, period_start__gte=start, period_start__lte=end)
    else:
        periods = Q(period_minutes=60, period_start__gte=hourly_from, period_start__lte=end) | Q(
            period_minutes=1, period_start__gte=start, period_start__lt=hourly_from
        )
    rows = AttemptRollup.objects.filter(periods)
    if tenant is not None:
        rows = rows.filter(tenant=tenant)
    if queue:
        rows = rows.filter(queue=queue)
    if host:
        rows = rows.filter(host=host.lower())
    return rows


_SUMS = {
    "n": Sum("count"),
    "timed": Sum("timed_count"),
    "sum_ms": Sum("sum_ms"),
    "max_ms": Max("max_ms"),
    **{name: Sum(name) for name in BUCKET_FIELDS},
}


class _Totals:
    """Counts, latency sums and histogram of a set of roll-up groups, added up."""

    def __init__(self):
        self.count = self.timed = self.successes = 0
        self.sum_ms = self.max_ms = 0.0
        self.buckets = [0] * len(BUCKET_FIELDS)

    def add(self, group: dict) -> None:
        self.count += group["n"] or 0
        self.timed += group["timed"] or 0
        self.sum_ms += group["sum_ms"] or 0.0
        self.max_ms = max(self.max_ms, group["max_ms"] or 0.0)
        for index, name in enumerate(BUCKET_FIELDS):
            self.buckets[index] += group[name] or 0
        if group["outcome"] == Outcome.SUCCESS:
            self.successes += group["n"] or 0

    def latency(self) -> dict:
        figures = {"avg": _round(self.sum_ms / self.timed) if self.timed else None}
        for name, q in PERCENTILES:
            figures[name] = _round(percentile(self.buckets, q, self.max_ms))
        figures["max"] = _round(self.max_ms) if self.timed else None
        return figures

    def success_rate(self) -> float | None:
        return _round(self.successes / self.count, 4) if self.count else None


def stats(
    *, window: timedelta, tenant=None, queue: str | None = None, host: str | None = None, now=None
) -> dict:
    """QPS, latency percentiles, success rates and error distribution of the last `window`.

    The window starts at the top of the minute `window` ago (the finest roll-up is a minute)
    and ends now; QPS divides by exactly that span. Whole hours are read from hour rows.
    """
    end = now or timezone.now()
    start = floor_minute(end - window)
    groups = (
        _rollups(start=start, end=end, tenant=tenant, queue=queue, host=host, hourly_from=ceil_hour(start))
        .values("outcome", "status_class")
        .annotate(**_SUMS)
        .order_by()
    )
    totals = _Totals()
    by_class = defaultdict(_Totals)
    errors = defaultdict(int)
    outcomes = defaultdict(int)
    for group in groups:
        totals.add(group)
        by_class[group["status_class"]].add(group)
        outcomes[group["outcome"]] += group["n"] or 0
        if group["outcome"] != Outcome.SUCCESS:
            errors[error_class(group["outcome"])] += group["n"] or 0
    seconds = (end - start).total_seconds()
    error_total = sum(errors.values())
    return {
        "window": {"start": start, "end": end, "seconds": round(seconds, 3)},
        "filters": {"tenant": getattr(tenant, "name", None), "queue": queue or None, "host": host or None},
        "count": totals.count,
        "qps": _round(totals.count / seconds, 3) if seconds > 0 else 0.0,
        "latency_ms": totals.latency(),
        "success_rate": totals.success_rate(),
        "successes": totals.successes,
        "status_classes": {
            name: {
                "count": part.count,
                "share": _round(part.count / totals.count, 4),
                "success_rate": part.success_rate(),
            }
            for name, part in sorted(by_class.items())
        },
        "errors": {
            "count": error_total,
            "by_class": {
                name: {"count": count, "share": _round(count / error_total, 4)}
                for name, count in sorted(errors.items(), key=lambda item: -item[1])
            },
        },
        "outcomes": dict(sorted(outcomes.items())),
        "pool": heartbeats.pool_totals(now=end),
    }


def timeseries(
    *, window: timedelta, step: timedelta, tenant=None, queue=None, host=None, now=None
) -> list[dict]:
    """Points for charts, oldest first: per `step`, QPS, latency percentiles, success rate, errors.

    A step of whole hours reads hour rows, its slots starting on the hour. Use one for windows
    over a few hours: sub-hour steps read minute rows (a day of them takes most of a second).
    """
    step = max(step, timedelta(minutes=1))
    end = now or timezone.now()
    hourly = step % HOUR == timedelta(0)
    start = (
        (end - window).replace(minute=0, second=0, microsecond=0) if hourly else floor_minute(end - window)
    )
    groups = (
        _rollups(
            start=start, end=end, tenant=tenant, queue=queue, host=host, hourly_from=start if hourly else None
        )
        .values("period_start", "outcome")
        .annotate(**_SUMS)
        .order_by()
    )
    slots = int((end - start) / step) + 1
    points = [_Totals() for _ in range(slots)]
    errors = [defaultdict(int) for _ in range(slots)]
    for group in groups:
        group["status_class"] = None
        index = min(int((group["period_start"] - start) / step), slots - 1)
        points[index].add(group)
        if group["outcome"] != Outcome.SUCCESS:
            errors[index][error_class(group["outcome"])] += group["n"] or 0
    series = []
    for index, point in enumerate(points):
        slot_start = start + index * step
        seconds = (min(slot_start + step, end) - slot_start).total_seconds()
        latency = point.latency()
        series.append(
            {
                "start": slot_start,
                "count": point.count,
                "qps": _round(point.count / seconds, 3) if seconds > 0 else 0.0,
                "success_rate": point.success_rate(),
                "avg_ms": latency["avg"],
                **{name: latency[name] for name, _ in PERCENTILES},
                "errors": dict(errors[index]),
            }
        )
    return series


def _round(value, digits=3):
    return None if value is None else round(value, digits)
