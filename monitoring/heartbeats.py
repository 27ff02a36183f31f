"""Reading the heartbeats the engine writes (callbacks.delivery.instruments.heartbeats): which
workers and dispatchers are alive, and their connection pools summed, for readiness and the stats."""

from datetime import timedelta

from django.utils import timezone

from callbacks import conf
from callbacks.delivery.instruments.heartbeats import DISPATCHER, WORKER
from callbacks.models import Heartbeat

__all__ = ["DISPATCHER", "WORKER", "alive", "pool_totals"]


def alive(*, role: str, within_seconds: float | None = None, now=None):
    """Heartbeats of `role` seen within the readiness threshold (CALLBACKS READY_HEARTBEAT_SECONDS)."""
    within = within_seconds if within_seconds is not None else conf.get("READY_HEARTBEAT_SECONDS")
    since = (now or timezone.now()) - timedelta(seconds=within)
    return Heartbeat.objects.filter(role=role, seen_at__gte=since).order_by("name")


def pool_totals(*, now=None) -> dict:
    """Active and idle connections summed over the live workers' latest heartbeats."""
    totals = {"active": 0, "idle": 0, "pools": 0, "workers": 0}
    for info in alive(role=WORKER, now=now).values_list("info", flat=True):
        totals["workers"] += 1
        pool = (info or {}).get("pool") or {}
        for key in ("active", "idle", "pools"):
            totals[key] += int(pool.get(key) or 0)
    return totals
