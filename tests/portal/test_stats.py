"""The tenant's stats: its own attempts only, drawn as on the operators' dashboard."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from callbacks.delivery.instruments.rollups import rollup_add
from callbacks.models import TaskExecution
from tests.factories import make_task


def attempts(tenant, count, outcome="success", code=200):
    task = make_task(tenant=tenant, url=f"http://127.0.0.1:9/{tenant.name}/stats")
    now = timezone.now()
    executions = [
        TaskExecution(
            task=task,
            tenant=tenant,
            attempt=1,
            started_at=now - timedelta(minutes=1 + n % 50),
            duration_ms=20.0 + n,
            outcome=outcome,
            status_code=code,
            request_method="POST",
            request_url=task.url,
        )
        for n in range(count)
    ]
    rollup_add(executions=executions, tasks={task.id: task})


def test_stats_count_the_tenants_attempts_only(portal, a, b):
    attempts(a.tenant, 30)
    attempts(a.tenant, 6, outcome="http_5xx", code=503)
    attempts(b.tenant, 500)
    response = portal.get(reverse("portal:stats"), {"window": "1h"})
    summary = response.context["summary"]
    assert summary["count"] == 36
    assert summary["successes"] == 30
    assert "pool" not in summary
    page = response.content.decode()
    assert page.count('<svg class="tc-chart"') == 4
    assert 'aria-label="Errors by class"' in page


def test_an_unknown_window_falls_back_to_the_default(portal):
    response = portal.get(reverse("portal:stats"), {"window": "1y"})
    assert response.status_code == 200 and response.context["window"] == "24h"
