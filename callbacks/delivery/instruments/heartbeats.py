"""Signs of life of worker processes and dispatchers, for readiness and the pool stats.

beat() is called every few seconds by each worker process and by the dispatcher loop; it is one
UPDATE (an INSERT the first time). A worker's beat also carries its connection-pool state (the
worker puts it in `info`), where the stats read it (monitoring.heartbeats).
"""

import logging
import os
import socket
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from callbacks.delivery.instruments import multiproc
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
    info.setdefault("pid", os.getpid())
    now = timezone.now()
    if not Heartbeat.objects.filter(role=role, name=name).update(seen_at=now, info=info):
        try:
            with transaction.atomic():
                Heartbeat.objects.create(role=role, name=name, seen_at=now, started_at=now, info=info)
        except IntegrityError:  # a restarted process with the same name raced us
            Heartbeat.objects.filter(role=role, name=name).update(seen_at=now, info=info)
    multiproc.sweep_dead_processes()
