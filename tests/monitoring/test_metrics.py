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
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from callbacks import queues
from callbacks.delivery.instruments import heartbeats, metrics, multiproc
from callbacks.domain.vocabulary import UNFINISHED_STATUSES
from callbacks.labels import status_class
from callbacks.models import CircuitBreaker, QueueState, TaskExecution
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
        # A worker of the cluster serving the task's queue, as an operator starts one.
        env.update(
            DJANGO_SETTINGS_MODULE="taskcenter.settings",
            DATABASE_URL=_database_url(),
            Q_CLUSTER_NAME=task.queue,
        )
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


def _served(queue):
    """A worker cluster serving `queue` has been seen, as when an operator starts one."""
    heartbeats.beat(role=heartbeats.WORKER, name=f"test:{queue}", info={"queue": queue})
    queues.forget_operator_queues()


@pytest.fixture(autouse=True)
def _fresh_operator_queues():
    queues.forget_operator_queues()
    yield
    queues.forget_operator_queues()


@pytest.mark.django_db(transaction=True)
def test_metrics_include_django_prometheus_and_database_gauges(tenant, client):
    _served("depth-q")
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
    assert not families["callbacks_origin_concurrency_limit"].samples  # no origin is slowed down
    assert {s.labels["role"] for s in families["callbacks_processes_alive"].samples} == {
        "worker",
        "dispatcher",
    }


@pytest.mark.django_db(transaction=True)
def test_queue_depth_is_0_for_known_queues_when_nothing_waits(client):
    QueueState.objects.create(name="bulk", paused=True)
    _served("bulk")
    families = _scrape(client)
    depth = {
        (sample.labels["queue"], sample.labels["status"]): sample.value
        for sample in _samples(families, "callbacks_queue_depth", "callbacks_queue_depth")
    }
    expected = {(queue, status): 0.0 for queue in ("default", "bulk") for status in UNFINISHED_STATUSES}
    assert depth == expected


@pytest.mark.django_db(transaction=True)
def test_metrics_show_the_concurrency_of_origins_slowed_down(client, settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "MAX_CONCURRENCY_PER_ORIGIN": 10}
    CircuitBreaker.objects.create(origin="https://slow.example:443", concurrency_limit=2)
    CircuitBreaker.objects.create(origin="https://fine.example:443")

    families = _scrape(client)

    [sample] = families["callbacks_origin_concurrency_limit"].samples
    assert (sample.labels, sample.value) == ({"origin": "https://slow.example:443"}, 2)


@pytest.mark.django_db(transaction=True)
def test_queues_no_operator_runs_are_one_label_and_their_names_not_shown(tenant, client):
    # A tenant may write any queue name on its tasks (three API calls once made 3,000 series).
    secret_names = [f"acme-payroll-{n}" for n in range(50)]
    for name in secret_names:
        make_monitored_task(tenant=tenant, queue=name)
    make_monitored_task(tenant=tenant, queue="default")

    page = client.get("/metrics").content.decode()
    families = {family.name: family for family in text_string_to_metric_families(page)}

    assert "acme-payroll" not in page
    depth = {
        (sample.labels["queue"], sample.labels["status"]): sample.value
        for sample in families["callbacks_queue_depth"].samples
        if sample.value
    }
    assert depth == {("default", "scheduled"): 1, ("other", "scheduled"): 50}


@pytest.mark.django_db(transaction=True)
def test_a_queue_becomes_a_label_once_a_cluster_serves_it(tenant, client):
    make_monitored_task(tenant=tenant, queue="bulk")
    _served("bulk")
    families = _scrape(client)
    assert _samples(
        families, "callbacks_queue_depth", "callbacks_queue_depth", queue="bulk", status="scheduled"
    )


@pytest.mark.django_db(transaction=True)
def test_attempts_to_a_queue_no_operator_runs_count_under_other(tenant, client):
    from callbacks.delivery.instruments.accounting import attempts_recorded, task_finished
    from tests.factories import make_attempts

    name = f"tenant-chosen-{uuid.uuid4().hex[:10]}"
    task = make_monitored_task(tenant=tenant, queue=name)
    before = sum(_attempt_counts(_scrape(client), "other").values())
    attempts_recorded(
        TaskExecution.objects.bulk_create(make_attempts(task=task, count=7, seed=3)), {task.id: task}
    )
    task_finished(task, "failed")

    page = client.get("/metrics").content.decode()
    families = {family.name: family for family in text_string_to_metric_families(page)}
    assert name not in page
    assert sum(_attempt_counts(families, "other").values()) == before + 7

    assert families["callbacks_client_certificates_expiring"].samples[0].value == 0


def test_client_certificates_expiring_soon_are_counted(tenant, client):
    cert, key = client_pem(not_after=timezone.now() + timedelta(days=2))
    client_certificate_set(tenant=tenant, certificate=cert, key=key, actor_type="user", actor="ops")
    [sample] = _scrape(client)["callbacks_client_certificates_expiring"].samples
    assert sample.value == 1


def test_observing_many_at_once_counts_as_observing_each():
    amounts = [0.0, 0.005, 0.0051, 0.3, 0.25, 7.0, 60.0, 61.0, 1e6, -1.0, 0.01, 0.3]
    name = f"t{uuid.uuid4().hex[:10]}"
    one_by_one = Histogram(
        f"{name}_each", "each", buckets=metrics.LATENCY_BUCKETS, registry=CollectorRegistry()
    )
    at_once = Histogram(f"{name}_many", "many", buckets=metrics.LATENCY_BUCKETS, registry=CollectorRegistry())
    for amount in amounts:
        one_by_one.observe(amount)
    metrics.observe_many(at_once, amounts[:5])
    metrics.observe_many(at_once, [])
    metrics.observe_many(at_once, amounts[5:])

    def samples(histogram):
        [family] = histogram.collect()
        return {
            (s.name.rsplit("_", 1)[-1], s.labels.get("le")): s.value
            for s in family.samples
            if not s.name.endswith("_created")
        }

    assert samples(at_once) == samples(one_by_one)
    assert samples(at_once)[("bucket", "0.005")] == 3  # -1.0, 0.0 and the bound itself
    assert samples(at_once)[("bucket", "+Inf")] == len(amounts)
