"""The dashboard page: charts from the roll-ups, what waits and why, queue depth, breakers, processes,
the window selector and filters, caching."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from callbacks.delivery.instruments import heartbeats
from callbacks.delivery.instruments.rollups import rollup_add
from callbacks.models import BreakerState, CircuitBreaker, TaskExecution, TaskStatus
from tests.factories import declare_queues, make_task

pytestmark = pytest.mark.django_db
URL = reverse("admin-dashboard")


def record_attempts(task, outcomes, *, minutes_ago=3):
    started = timezone.now() - timedelta(minutes=minutes_ago)
    executions = [
        TaskExecution(
            task=task,
            tenant=task.tenant,
            attempt=n,
            started_at=started,
            duration_ms=20.0 + n,
            outcome=outcome,
            status_code=code,
            request_method="POST",
            request_url=task.url,
        )
        for n, (outcome, code) in enumerate(outcomes, start=1)
    ]
    rollup_add(executions=executions, tasks={task.id: task})


def test_dashboard_needs_a_staff_login(client):
    response = client.get(URL)

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_dashboard_shows_charts_with_data(admin_client, tenant):
    task = make_task(tenant=tenant, url="https://a.example.com/")
    record_attempts(task, [("success", 200)] * 8 + [("http_5xx", 503), ("timeout", None)])

    response = admin_client.get(URL, {"window": "15m"})

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<svg class="tc-chart"') == 4
    for title in ("Throughput", "Latency percentiles", "Success rate", "Errors by class"):
        assert f'aria-label="{title}"' in html
    assert "polyline" in html and 'class="bar"' in html
    assert response.context["summary"]["count"] == 10
    assert len(response.context["points"]) == 16  # one per minute of 15, plus the current one
    # Nothing loaded from another host (a CSRF token may well contain "cdn": look at the addresses).
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', html)


@pytest.mark.parametrize(("window", "points"), [("1h", 31), ("6h", 37), ("24h", 25), ("7d", 29)])
def test_windows_choose_their_step(admin_client, window, points):
    response = admin_client.get(URL, {"window": window})

    assert response.context["window"] == window
    assert len(response.context["points"]) in (points, points + 1)  # the window's end may cross a slot


def test_an_unknown_window_falls_back_to_the_default(admin_client):
    assert admin_client.get(URL, {"window": "1y"}).context["window"] == "1h"


def test_queue_depth_breakers_and_processes(admin_client, tenant):
    make_task(tenant=tenant, url="https://a.example.com/", queue="billing")
    make_task(tenant=tenant, url="https://a.example.com/", queue="billing", status=TaskStatus.RETRYING)
    make_task(tenant=tenant, url="https://a.example.com/", status=TaskStatus.SUCCEEDED)
    CircuitBreaker.objects.create(origin="https://down.example.com:443", state=BreakerState.OPEN)
    heartbeats.beat(role=heartbeats.WORKER, name="w1")
    heartbeats.beat(role=heartbeats.DISPATCHER, name="d1")

    response = admin_client.get(URL)

    depth = response.context["depth"]
    billing = dict(zip(depth["statuses"], depth["queues"][0]["counts"], strict=True))
    assert depth["queues"][0]["name"] == "billing"
    assert billing == {"scheduled": 1, "retrying": 1, "queued": 0, "running": 0}
    html = response.content.decode()
    assert "https://down.example.com:443" in html and "1 open" in html
    assert "w1" in html and "d1" in html


def test_figures_are_cached_briefly(admin_client, tenant):
    task = make_task(tenant=tenant, url="https://a.example.com/")
    record_attempts(task, [("success", 200)])
    assert admin_client.get(URL, {"window": "15m"}).context["summary"]["count"] == 1

    record_attempts(task, [("success", 200)])

    assert admin_client.get(URL, {"window": "15m"}).context["summary"]["count"] == 1  # from the cache
    cache.clear()
    assert admin_client.get(URL, {"window": "15m"}).context["summary"]["count"] == 2


def test_filters_narrow_the_figures_to_a_tenant_a_queue_and_an_origin(admin_client, tenant, other_api):
    declare_queues("billing")
    mine = make_task(tenant=tenant, url="https://a.example.com/", queue="billing")
    theirs = make_task(tenant=other_api.tenant, url="https://b.example.com/")
    record_attempts(mine, [("success", 200)] * 3)
    record_attempts(theirs, [("success", 200)] * 5)

    def count(**filters):
        cache.clear()
        return admin_client.get(URL, {"window": "15m", **filters}).context["summary"]["count"]

    assert count() == 8
    assert count(tenant=str(tenant.pk)) == 3
    assert count(queue="billing") == 3
    assert count(origin="https://b.example.com:443") == 5
    assert count(origin="https://b.example.com/some/path") == 5  # a URL names its origin


def test_a_bad_filter_is_named_with_its_reason(admin_client):
    response = admin_client.get(URL, {"origin": "b.example.com", "queue": "nowhere"})

    form = response.context["form"]
    assert "scheme://host:port" in form.errors["origin"][0]
    assert "nowhere" in form.errors["queue"][0]
    assert response.context["summary"]["filters"] == {"tenant": None, "queue": None, "host": None}
    html = response.content.decode()
    assert "origin: Write an origin as scheme://host:port" in html


def test_held_apart_from_waiting_for_its_time(admin_client, tenant):
    CircuitBreaker.objects.create(
        origin="https://down.example.com:443",
        state=BreakerState.OPEN,
        next_probe_at=timezone.now() + timedelta(minutes=5),
    )
    make_task(tenant=tenant, url="https://down.example.com/")
    make_task(tenant=tenant, url="https://a.example.com/", run_at=timezone.now() + timedelta(hours=2))
    make_task(tenant=tenant, url="https://a.example.com/")

    response = admin_client.get(URL)

    backlog = response.context["backlog"]
    assert (backlog["ready"], backlog["held"], backlog["waiting"]) == (1, 1, 1)
    html = response.content.decode()
    assert 'data-reason="breaker open"' in html


def test_the_breaker_table_links_to_the_origin_page(admin_client):
    CircuitBreaker.objects.create(origin="https://down.example.com:443", state=BreakerState.OPEN)

    html = admin_client.get(URL).content.decode()

    assert 'href="/admin/origins/https_3A_2F_2Fdown.example.com_3A443/"' in html


def test_figures_are_formatted_for_people(admin_client, tenant):
    task = make_task(tenant=tenant, url="https://a.example.com/")
    record_attempts(task, [("success", 200)] * 1200 + [("http_5xx", 503)] * 10)

    html = admin_client.get(URL, {"window": "15m"}).content.decode()

    assert "<b>1,210</b>" in html
    assert "<b>99.2 %</b>" in html
    assert "0.000" not in html
