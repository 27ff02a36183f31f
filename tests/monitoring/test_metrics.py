"""/metrics sums every process's metrics, from processes alive and gone (worker recycling)."""

import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from callbacks.delivery.instruments import multiproc
from callbacks.labels import status_class
from callbacks.models import TaskExecution
from callbacks.services.certificates import client_certificate_set
from tests.certificates import client_pem
from tests.factories import make_monitored_task

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    """The URL of pytest-django's test database, for the child process."""
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
        host = settings["HOST"] or "127.0.0.1"
        return f"postgres://{settings['USER']}{password}@{host}:{settings['PORT'] or 5432}/{settings['NAME']}"
    return f"sqlite:///{settings['NAME']}"


class Recorder:
    """tests/monitoring/recorder_process.py running as a separate process."""

    def __init__(self, task, count, seed, in_flight=0):
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
        env.update(DJANGO_SETTINGS_MODULE="taskcenter.settings", DATABASE_URL=_database_url())
        # Same PROMETHEUS_MULTIPROC_DIR as this process: inherited through os.environ.
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.monitoring.recorder_process",
                str(task.id),
                str(count),
                str(seed),
                str(in_flight),
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        assert line.strip() == "recorded", self.proc.stderr.read()

    def exit(self):
        self.proc.stdin.close()
        assert self.proc.wait(timeout=30) == 0, self.proc.stderr.read()


def _scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def _samples(families, family, sample_name, **labels):
    return [
        sample
        for sample in (families[family].samples if family in families else [])
        if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]


def _attempt_counts(families, queue) -> Counter:
    counts = Counter()
    for sample in _samples(families, "callbacks_attempts", "callbacks_attempts_total", queue=queue):
        counts[(sample.labels["outcome"], sample.labels["status_class"])] += sample.value
    return counts


def _database_counts(task) -> Counter:
    return Counter(
        (outcome, status_class(code))
        for outcome, code in TaskExecution.objects.filter(task=task).values_list("outcome", "status_code")
    )


@pytest.fixture(autouse=True)
def _sweep_at_every_scrape(monkeypatch):
    monkeypatch.setattr(multiproc, "_SWEEP_INTERVAL_SECONDS", 0.0)


@pytest.mark.django_db(transaction=True)
def test_metrics_sum_processes_alive_and_gone(tenant, client):
    assert multiproc.directory() is not None, "tests run in multiprocess mode (settings set the directory)"
    queue = f"q{uuid.uuid4().hex[:10]}"  # other test runs may share the directory: count only ours
    task = make_monitored_task(tenant=tenant, queue=queue)

    first = Recorder(task, count=120, seed=11, in_flight=3)
    families = _scrape(client)
    assert _attempt_counts(families, queue) == _database_counts(task)
    assert sum(_attempt_counts(families, queue).values()) == 120
    [in_flight] = _samples(families, "callbacks_in_flight", "callbacks_in_flight", queue=queue)
    assert in_flight.value == 3

    first.exit()  # gone without clean-up, as a recycled or killed worker
    families = _scrape(client)
    assert _attempt_counts(families, queue) == _database_counts(task)
    assert not _samples(families, "callbacks_in_flight", "callbacks_in_flight", queue=queue)

    second = Recorder(task, count=80, seed=12)
    families = _scrape(client)
    second.exit()
    assert sum(_attempt_counts(families, queue).values()) == 200
    assert _attempt_counts(families, queue) == _database_counts(task)

    timed = TaskExecution.objects.filter(task=task, duration_ms__isnull=False).count()
    [histogram_count] = _samples(
        families,
        "callbacks_attempt_duration_seconds",
        "callbacks_attempt_duration_seconds_count",
        queue=queue,
    )
    assert histogram_count.value == timed


@pytest.mark.django_db(transaction=True)
def test_metrics_include_django_prometheus_and_database_gauges(tenant, client):
    make_monitored_task(tenant=tenant, queue="depth-q")
    client.get("/healthz")
    families = _scrape(client)
    # django-prometheus's own metrics land in the multiprocess directory too.
    assert _samples(
        families, "django_http_requests_before_middlewares", "django_http_requests_before_middlewares_total"
    )
    [depth] = _samples(
        families, "callbacks_queue_depth", "callbacks_queue_depth", queue="depth-q", status="scheduled"
    )
    assert depth.value == 1
    assert {s.labels["state"] for s in families["callbacks_breakers"].samples} == {
        "closed",
        "open",
        "half_open",
    }
    assert "callbacks_oldest_due_seconds" in families
    assert {s.labels["role"] for s in families["callbacks_processes_alive"].samples} == {
        "worker",
        "dispatcher",
    }
    assert families["callbacks_client_certificates_expiring"].samples[0].value == 0


def test_client_certificates_expiring_soon_are_counted(tenant, client):
    cert, key = client_pem(not_after=timezone.now() + timedelta(days=2))
    client_certificate_set(tenant=tenant, certificate=cert, key=key, actor_type="user", actor="ops")
    [sample] = _scrape(client)["callbacks_client_certificates_expiring"].samples
    assert sample.value == 1
