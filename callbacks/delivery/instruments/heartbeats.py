"""Signs of life of worker processes and dispatchers, for readiness and the pool stats.

beat() is called every few seconds by each worker process and by the dispatcher loop; it is one
UPDATE (an INSERT the first time). A worker's beat also carries its connection-pool state into
the Prometheus gauges and the heartbeat row, where the stats read it (monitoring.heartbeats).
"""

import logging
import os
import socket
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from callbacks.delivery.http.session import pool_state
from callbacks.delivery.instruments import metrics, multiproc
from callbacks.models import Heartbeat

logger = logging.getLogger(__name__)

WORKER = "worker"
DISPATCHER = "dispatcher"
# Rows of processes silent this long are deleted by the purge.
STALE_AFTER = timedelta(days=1)


def process_name() -> str:
    """A name unique to this process on this host: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(*, role: str, name: str, info: dict | None = None) -> None:
    info = dict(info or {})
    if role == WORKER:
        pool = _pool_state()
        if pool is not None:
            info["pool"] = pool
    info.setdefault("pid", os.getpid())
    now = timezone.now()
    if not Heartbeat.objects.filter(role=role, name=name).update(seen_at=now, info=info):
        try:
            with transaction.atomic():
                Heartbeat.objects.create(role=role, name=name, seen_at=now, started_at=now, info=info)
        except IntegrityError:  # a restarted process with the same name raced us
            Heartbeat.objects.filter(role=role, name=name).update(seen_at=now, info=info)
    multiproc.sweep_dead_processes()


def _pool_state() -> dict | None:
    """This process's connection pools, exported as livesum gauges."""
    try:
        state = pool_state()
        metrics.POOL_CONNECTIONS.labels("active").set(state.get("active", 0))
        metrics.POOL_CONNECTIONS.labels("idle").set(state.get("idle", 0))
        metrics.POOL_HOSTS.set(state.get("pools", 0))
    except Exception:
        logger.exception("reading the connection pool state failed")
        return None
    return {key: state.get(key, 0) for key in ("active", "idle", "pools")}
