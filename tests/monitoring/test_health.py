"""/readyz: the web process's database and broker. /readyz/delivery: workers and dispatcher alive, each
declared queue with due work served and draining; expiring client certificates."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from callbacks.delivery.instruments import heartbeats
from callbacks.delivery.worker import DeliveryWorker
from callbacks.models import Heartbeat, QueueState, TaskStatus
from callbacks.services.certificates import client_certificate_set
from callbacks.services.tenants import tenant_create
from monitoring.heartbeats import pool_totals
from tests.certificates import client_pem
from tests.factories import declare_queues, make_monitored_task


@pytest.fixture
def processes_alive(db):
    heartbeats.beat(role=heartbeats.WORKER, name="host:101", info={"queue": "default"})
    heartbeats.beat(role=heartbeats.DISPATCHER, name="host:100")


def _ready(client, path="/readyz/delivery"):
    response = client.get(path)
    return response.status_code, response.json()


def test_readyz_answers_for_the_web_process_only_whatever_delivery_does(client, db, tenant):
    """No worker, no dispatcher, a queue stalled for an hour: the API still takes callbacks, so a load
    balancer must keep it; delivery's state is /readyz/delivery's."""
    make_monitored_task(tenant=tenant, next_attempt_at=timezone.now() - timedelta(hours=1))

    status, body = _ready(client, "/readyz")

    assert status == 200, body
    assert set(body["checks"]) == {"database", "broker"}
    assert _ready(client)[0] == 503


def test_delivery_ready_when_everything_runs(client, processes_alive):
    status, body = _ready(client)
    assert status == 200, body
    assert set(body["checks"]) == {"database", "workers", "dispatcher", "queues", "client_certificates"}
    assert body["checks"]["workers"]["alive"] == 1
    assert body["checks"]["queues"]["failing"] == {}


def test_not_ready_when_workers_stop_beating(client, processes_alive):
    Heartbeat.objects.filter(role=heartbeats.WORKER).update(seen_at=timezone.now() - timedelta(minutes=5))
    status, body = _ready(client)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["workers"]["ok"] is False
    assert body["checks"]["dispatcher"]["ok"] is True

    heartbeats.beat(role=heartbeats.WORKER, name="host:101")  # the worker is back
    assert _ready(client)[0] == 200


def test_not_ready_without_a_dispatcher(client, db):
    heartbeats.beat(role=heartbeats.WORKER, name="host:101")
    status, body = _ready(client)
    assert status == 503 and body["checks"]["dispatcher"]["ok"] is False


def test_not_ready_while_due_work_waits_too_long_naming_the_queue(client, processes_alive, tenant):
    late = timezone.now() - timedelta(seconds=120)
    task = make_monitored_task(tenant=tenant, next_attempt_at=late, status=TaskStatus.RETRYING)
    make_monitored_task(
        tenant=tenant, next_attempt_at=timezone.now() + timedelta(hours=1)
    )  # future work is fine
    status, body = _ready(client)
    assert status == 503
    failing = body["checks"]["queues"]["failing"]
    assert set(failing) == {"default"} and failing["default"]["reason"] == "not draining"
    assert failing["default"]["oldest_due_seconds"] >= 120

    task.status = TaskStatus.SUCCEEDED  # the workers caught up
    task.save(update_fields=["status"])
    assert _ready(client)[0] == 200


def test_a_declared_queue_with_due_work_and_no_live_cluster_is_named(client, processes_alive, tenant):
    declare_queues("reports")
    make_monitored_task(tenant=tenant, queue="reports", next_attempt_at=timezone.now() - timedelta(seconds=1))

    status, body = _ready(client)

    assert status == 503
    assert body["checks"]["queues"]["failing"]["reports"]["reason"] == "no live cluster serves it"
    heartbeats.beat(role=heartbeats.WORKER, name="host:102", info={"queue": "reports"})
    assert _ready(client)[0] == 200


def test_recently_due_work_and_paused_queues_do_not_fail_readiness(client, processes_alive, tenant):
    make_monitored_task(tenant=tenant, next_attempt_at=timezone.now() - timedelta(seconds=5))
    assert _ready(client)[0] == 200
    declare_queues("held")
    make_monitored_task(tenant=tenant, queue="held", next_attempt_at=timezone.now() - timedelta(hours=1))
    assert _ready(client)[0] == 503
    QueueState.objects.filter(name="held").update(paused=True)  # waiting on purpose
    assert _ready(client)[0] == 200


def test_threshold_comes_from_settings(client, processes_alive, tenant, settings):
    make_monitored_task(tenant=tenant, next_attempt_at=timezone.now() - timedelta(seconds=30))
    assert _ready(client)[0] == 200
    settings.CALLBACKS = {**settings.CALLBACKS, "READY_MAX_LAG_SECONDS": 10.0}
    status, body = _ready(client)
    assert status == 503 and body["checks"]["queues"]["threshold_seconds"] == 10.0


def test_healthz_stays_trivial(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_beat_updates_one_row_per_process_and_pool_totals_add_up(db):
    heartbeats.beat(role=heartbeats.DISPATCHER, name="d")
    heartbeats.beat(role=heartbeats.DISPATCHER, name="d", info={"claimed": 3})
    assert Heartbeat.objects.filter(role=heartbeats.DISPATCHER).count() == 1
    assert Heartbeat.objects.get(name="d").info["claimed"] == 3

    now = timezone.now()
    Heartbeat.objects.create(
        role="worker", name="a", seen_at=now, info={"pool": {"active": 2, "idle": 5, "pools": 1}}
    )
    Heartbeat.objects.create(
        role="worker", name="b", seen_at=now, info={"pool": {"active": 1, "idle": 0, "pools": 1}}
    )
    Heartbeat.objects.create(
        role="worker", name="gone", seen_at=now - timedelta(hours=1), info={"pool": {"active": 9, "idle": 9}}
    )
    assert pool_totals() == {"active": 3, "idle": 5, "pools": 2, "workers": 2}


def test_worker_beat_carries_the_pool_state(transactional_db):
    worker = DeliveryWorker(concurrency=1, flush_seconds=0.01, name="w")
    try:
        worker._beat()
    finally:
        worker.shutdown(timeout=5)
    info = Heartbeat.objects.get(name="w").info
    assert set(info["pool"]) == {"active", "idle", "pools", "http2"} and info["lanes"] == 0


def test_client_certificates_expiring_within_14_days_are_reported_without_failing(
    client, processes_alive, tenant
):
    soon, later = client_pem(not_after=timezone.now() + timedelta(days=3)), client_pem()
    client_certificate_set(tenant=tenant, certificate=soon[0], key=soon[1], actor_type="user", actor="ops")
    other = tenant_create(name="calm").tenant
    client_certificate_set(tenant=other, certificate=later[0], key=later[1], actor_type="user", actor="ops")
    status, body = _ready(client)
    assert status == 200
    check = body["checks"]["client_certificates"]
    assert check["ok"] is True and check["expiring_within_days"] == 14 and check["expiring_count"] == 1
    [row] = check["expiring"]
    assert row["tenant"] == "acme"
    assert abs(datetime.fromisoformat(row["expires_at"]) - (timezone.now() + timedelta(days=3))) < timedelta(
        days=1
    )
