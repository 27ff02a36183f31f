"""Monitoring against real processes: readiness follows the workers, metrics survive recycling."""

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from callbacks.models import TaskExecution
from tests.e2e.helpers import create_callbacks, unfinished
from tests.processes import wait_until

pytestmark = [pytest.mark.e2e]


def ready(client):
    return client.get("/readyz/delivery").status_code == 200


def test_delivery_readiness_fails_while_workers_are_stopped_with_callbacks_due(
    api, client, receiver, service, settings
):
    settings.CALLBACKS = {**settings.CALLBACKS, "READY_HEARTBEAT_SECONDS": 3, "READY_MAX_LAG_SECONDS": 2}
    service("dispatcher", ["run_dispatcher"], CALLBACKS_HEARTBEAT_SECONDS=0.5)
    workers = service("workers", ["qcluster"], CALLBACKS_HEARTBEAT_SECONDS=0.5)
    wait_until(lambda: ready(client), timeout=60, message="/readyz/delivery to become healthy")

    workers.stop()
    create_callbacks(api, 10, receiver.url)
    # Both failures show: no live worker, and due callbacks waiting longer than the threshold.
    checks = wait_until(
        lambda: (
            (c := client.get("/readyz/delivery").json()["checks"])
            and not c["workers"]["ok"]
            and "default" in c["queues"]["failing"]
            and c
        ),
        timeout=30,
        message="/readyz/delivery to report dead workers and a stalled queue",
    )
    assert checks["database"]["ok"] and checks["dispatcher"]["ok"]
    assert client.get("/readyz/delivery").status_code == 503
    assert client.get("/readyz").status_code == 200  # the API itself stays in its load balancer
    assert len(receiver.received) == 0

    service("workers-again", ["qcluster"], CALLBACKS_HEARTBEAT_SECONDS=0.5)
    wait_until(lambda: unfinished() == 0, timeout=60, message="the backlog to drain")
    wait_until(lambda: ready(client), timeout=60, message="/readyz/delivery to recover")


def test_metrics_count_every_attempt_across_recycled_worker_processes(api, receiver, service, tmp_path):
    service("dispatcher", ["run_dispatcher"], CALLBACKS_TASKS_PER_JOB=5)
    service("workers", ["qcluster"], CALLBACKS_WORKER_RECYCLE=3)  # a new process every 3 batches

    # In batches of five at most: the two worker processes are replaced several times over.
    create_callbacks(api, 60, receiver.url)
    wait_until(lambda: unfinished() == 0, timeout=120, message="all callbacks final")

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path / "var" / "prometheus"))
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    attempts = sum(
        s.value for s in families["callbacks_attempts"].samples if s.name == "callbacks_attempts_total"
    )
    assert attempts == TaskExecution.objects.count() == 60
    pids = {path.name.rsplit("_", 1)[-1] for path in (tmp_path / "var" / "prometheus").glob("counter_*.db")}
    assert len(pids) > 2  # the counts came from several (recycled) worker processes
