"""Stats from roll-ups, checked against figures computed directly from the known attempts."""

import json
import math
from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from callbacks.buckets import bucket_index, bucket_range
from callbacks.delivery.instruments.accounting import attempts_recorded
from callbacks.labels import error_class, status_class
from callbacks.models import AttemptRollup
from monitoring import selectors
from tests.factories import make_attempts, make_monitored_task


def _record(attempts, tasks):
    by_id = {task.id: task for task in tasks}
    # Two flushes, like the recorder's: the second must add to rows the first created.
    attempts_recorded(attempts[: len(attempts) // 2], by_id)
    attempts_recorded(attempts[len(attempts) // 2 :], by_id)


def _exact_percentile(values, q):
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


@pytest.fixture
def known(tenant):
    """400 attempts on two tasks (two queues, two hosts) within the last three minutes."""
    first = make_monitored_task(tenant=tenant, url="http://127.0.0.1:9001/a", queue="billing")
    second = make_monitored_task(tenant=tenant, url="http://localhost:9002/b", queue="default")
    attempts = make_attempts(task=first, count=250, seed=1) + make_attempts(task=second, count=150, seed=2)
    _record(attempts, [first, second])
    return attempts


def test_rollups_add_up_across_flushes(known):
    for period in (1, 60):
        rows = AttemptRollup.objects.filter(period_minutes=period)
        assert sum(rows.values_list("count", flat=True)) == len(known)
        # Fewer rows than attempts: they are grouped per period, queue, host, outcome and class.
        assert rows.count() < len(known) / 4


def test_stats_match_figures_computed_from_the_attempts(known, tenant):
    now = timezone.now()
    figures = selectors.stats(window=timedelta(minutes=5), tenant=tenant, now=now)

    count = len(known)
    assert figures["count"] == count
    seconds = (now - selectors.floor_minute(now - timedelta(minutes=5))).total_seconds()
    assert figures["window"]["seconds"] == pytest.approx(seconds, abs=0.001)
    assert figures["qps"] == round(count / seconds, 3)

    successes = sum(1 for a in known if a.outcome == "success")
    assert figures["successes"] == successes
    assert figures["success_rate"] == round(successes / count, 4)

    classes = Counter(status_class(a.status_code) for a in known)
    assert {name: part["count"] for name, part in figures["status_classes"].items()} == dict(classes)
    class_successes = Counter(status_class(a.status_code) for a in known if a.outcome == "success")
    for name, part in figures["status_classes"].items():
        assert part["success_rate"] == round(class_successes[name] / classes[name], 4)

    errors = Counter(error_class(a.outcome) for a in known if a.outcome != "success")
    assert {name: part["count"] for name, part in figures["errors"]["by_class"].items()} == dict(errors)
    assert set(errors) >= {"network", "timeout", "4xx", "5xx"}
    assert figures["outcomes"] == dict(Counter(a.outcome for a in known))

    durations = [a.duration_ms for a in known if a.duration_ms is not None]
    latency = figures["latency_ms"]
    assert latency["avg"] == pytest.approx(sum(durations) / len(durations), abs=0.001)
    assert latency["max"] == round(max(durations), 3)
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        exact = _exact_percentile(durations, q)
        lower, upper = bucket_range(bucket_index(exact), max(durations))
        assert lower <= latency[name] <= upper, (name, exact, latency[name])


def test_stats_filter_by_queue_and_host(known, tenant):
    window = timedelta(minutes=5)
    billing = selectors.stats(window=window, tenant=tenant, queue="billing")
    assert billing["count"] == 250
    assert selectors.stats(window=window, tenant=tenant, host="localhost")["count"] == 150
    assert selectors.stats(window=window, tenant=tenant, host="LOCALHOST", queue="billing")["count"] == 0


@pytest.mark.parametrize("window", ["1m", "5m", "1h", "2h", "3h", "4h", "7d"])
def test_windows_count_exactly_the_attempts_since_their_start(tenant, window):
    """Windows that mix hour rows with minute rows before the first whole hour."""
    task = make_monitored_task(tenant=tenant)
    now = timezone.now()
    attempts = []
    for seed, minutes_ago in enumerate((0.5, 3, 59, 61, 119, 130, 179, 200, 60 * 24 * 6)):
        started = now - timedelta(minutes=minutes_ago)
        # Ten seconds of attempts, kept clear of the minute boundary the window starts on.
        started = started.replace(second=min(started.second, 45))
        attempts += make_attempts(task=task, count=5 + seed, seed=seed, started_at=started, spread_seconds=10)
    _record(attempts, [task])
    start = selectors.floor_minute(now - selectors.parse_window(window))
    expected = sum(1 for attempt in attempts if attempt.started_at >= start)
    assert selectors.stats(window=selectors.parse_window(window), tenant=tenant, now=now)["count"] == expected


def test_hourly_timeseries_reads_hour_rows(tenant):
    task = make_monitored_task(tenant=tenant)
    # Half past an hour: the ten recent attempts (the last 150 s) all fall in the last hour's row,
    # whatever the clock says when the test runs.
    now = timezone.now().replace(minute=30, second=0, microsecond=0) - timedelta(hours=1)
    attempts = make_attempts(
        task=task, count=40, seed=8, started_at=now - timedelta(minutes=150), spread_seconds=60
    )
    recent = make_attempts(task=task, count=10, seed=9, started_at=now - timedelta(seconds=151))
    _record(attempts + recent, [task])
    points = selectors.timeseries(window=timedelta(hours=4), step=timedelta(hours=1), tenant=tenant, now=now)
    assert all(point["start"].minute == 0 for point in points)
    assert sum(point["count"] for point in points) == 50
    assert points[-1]["count"] >= 10


def test_timeseries_points_add_up(known, tenant):
    points = selectors.timeseries(window=timedelta(minutes=10), step=timedelta(minutes=5), tenant=tenant)
    assert len(points) in (2, 3)  # the last slot is the running one
    assert sum(p["count"] for p in points) == len(known)
    assert sum(sum(p["errors"].values()) for p in points) == sum(1 for a in known if a.outcome != "success")
    assert all(p["p50"] is not None for p in points if p["count"])


@pytest.mark.parametrize("text", ["", "5", "0m", "8d", "30s", "10x", "169h"])
def test_parse_window_refuses_bad_windows(text):
    with pytest.raises(ValueError):
        selectors.parse_window(text)


def test_parse_window_accepts_the_range():
    assert selectors.parse_window("1m") == timedelta(minutes=1)
    assert selectors.parse_window("24h") == timedelta(days=1)
    assert selectors.parse_window("7d") == timedelta(days=7)


# --- API ------------------------------------------------------------------------------------


def test_stats_api_answers_for_the_authenticated_tenant_only(known, api, other_api):
    response = api.get("/api/v1/stats/", {"window": "5m"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == len(known)
    assert set(body) >= {"qps", "latency_ms", "success_rate", "status_classes", "errors", "pool", "window"}
    assert set(body["latency_ms"]) == {"avg", "p50", "p90", "p95", "p99", "max"}
    assert api.get("/api/v1/stats/", {"window": "1h", "queue": "billing"}).json()["count"] == 250
    assert other_api.get("/api/v1/stats/?window=5m").json()["count"] == 0


@pytest.mark.parametrize("window", ["9d", "99999999999999999d", "9" * 400 + "m"])
def test_stats_api_refuses_a_bad_window(api, window):
    response = api.get(f"/api/v1/stats/?window={window}")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["window"] == ["The window must be between 1m and 7d."]


def test_stats_api_needs_a_key(client, db):
    assert client.get("/api/v1/stats/").status_code == 401


def test_stats_api_is_in_the_schema(api, client):
    schema = client.get("/api/schema/?format=json").json()
    assert "/api/v1/stats/" in schema["paths"]


# --- callback_stats ---------------------------------------------------------------------------


def test_callback_stats_prints_a_table(known):
    out = StringIO()
    call_command("callback_stats", "--window", "5m", "--tenant", "acme", stdout=out)
    text = out.getvalue()
    assert f"attempts        {len(known):,}" in text
    for word in ("QPS", "success rate", "p99", "2xx", "5xx", "network", "timeout", "pool"):
        assert word in text


def test_callback_stats_prints_json(known):
    out = StringIO()
    call_command("callback_stats", "--window", "1h", "--queue", "billing", "--json", stdout=out)
    figures = json.loads(out.getvalue())
    assert figures["count"] == 250
    assert figures["filters"]["queue"] == "billing"


def test_callback_stats_refuses_unknown_tenant_and_bad_window(db):
    with pytest.raises(CommandError, match="No tenant"):
        call_command("callback_stats", "--tenant", "nobody")
    with pytest.raises(CommandError, match="window"):
        call_command("callback_stats", "--window", "99d")
