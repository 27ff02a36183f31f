"""Liveness and readiness, split by what each protects.

/readyz answers for this web process: its database and broker. A load balancer reads it, so the
state of delivery (a stopped cluster, a queue nobody serves, a backlog) never takes the API out of
rotation: tenants can still register callbacks, which wait safely in the database.

/readyz/delivery answers for delivery, for alerts: 503 when no worker or dispatcher has beaten
lately, or when a declared queue with due work has no live cluster or is not draining (its
oldest due callback waited longer than READY_MAX_LAG_SECONDS), naming the queue (the silent
stall behind a healthy API that systems like this are known for).

Tenants' client certificates expiring within 14 days are reported in /readyz/delivery's details,
without failing it: the service still delivers, but those receivers will refuse the tenant once they
expire.
"""

from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import Min
from django.http import JsonResponse
from django.utils import timezone

from callbacks import conf, queues, selectors
from callbacks.domain.certificates import EXPIRY_WARNING
from callbacks.domain.vocabulary import CLAIMABLE_STATUSES
from callbacks.models import CallbackTask, QueueState, TaskStatus
from monitoring import access, heartbeats


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    return _answer(request, web_checks())


def readyz_delivery(request):
    return _answer(request, delivery_checks())


def _answer(request, checks: dict) -> JsonResponse:
    ok = all(check["ok"] for check in checks.values())
    answer = {"status": "ok" if ok else "unavailable"}
    # The status code is all a load balancer needs; the checks name processes and errors.
    if access.may_read_internals(request):
        answer["checks"] = checks
    return JsonResponse(answer, status=200 if ok else 503)


def web_checks() -> dict:
    checks = {"database": _check_database()}
    if checks["database"]["ok"]:
        checks["broker"] = _check_broker()
    return checks


def delivery_checks() -> dict:
    checks = {"database": _check_database()}
    if not checks["database"]["ok"]:
        return checks  # every other check reads the database
    now = timezone.now()
    checks["workers"] = _check_alive(heartbeats.WORKER, now)
    checks["dispatcher"] = _check_alive(heartbeats.DISPATCHER, now)
    checks["queues"] = _check_queues(now)
    checks["client_certificates"] = _check_client_certificates(now)
    return checks


def _guarded(check):
    def run(*args):
        try:
            return check(*args)
        except Exception as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    return run


@_guarded
def _check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True, "vendor": connection.vendor}


@_guarded
def _check_broker():
    if "orm" in settings.Q_CLUSTER:
        return {"ok": True, "broker": "orm"}  # the broker is the database checked above
    from django_q.brokers import get_broker

    broker = get_broker()
    return {"ok": bool(broker.ping()), "broker": broker.info()}


@_guarded
def _check_alive(role, now):
    threshold = conf.get("READY_HEARTBEAT_SECONDS")
    names = list(
        heartbeats.alive(role=role, within_seconds=threshold, now=now).values_list("name", flat=True)
    )
    return {"ok": bool(names), "alive": len(names), "names": names[:20], "threshold_seconds": threshold}


@_guarded
def _check_queues(now):
    """Each declared queue, not paused, with due work: served by a live cluster and draining."""
    threshold = conf.get("READY_MAX_LAG_SECONDS")
    served = queues.served_queues(now=now, within_seconds=conf.get("READY_HEARTBEAT_SECONDS")) or set()
    failing = {}
    for name, lag in oldest_due_lag_by_queue(now=now).items():
        if name not in served:
            failing[name] = {"oldest_due_seconds": round(lag, 3), "reason": "no live cluster serves it"}
        elif lag > threshold:
            failing[name] = {"oldest_due_seconds": round(lag, 3), "reason": "not draining"}
    return {
        "ok": not failing,
        "failing": failing,
        "served": sorted(served),
        "threshold_seconds": threshold,
    }


@_guarded
def _check_client_certificates(now):
    expiring = selectors.client_certificates_expiring(now=now)
    return {
        "ok": True,  # reported, not failed: delivery goes on until the certificate expires
        "expiring_within_days": EXPIRY_WARNING.days,
        "expiring": [
            {"tenant": row["name"], "expires_at": row["client_certificate_expires_at"].isoformat()}
            for row in expiring[:20]
        ],
        "expiring_count": len(expiring),
    }


def oldest_due_lag_by_queue(*, now=None) -> dict[str, float]:
    """Declared queue -> how long its oldest due task not yet started has waited, for the queues with
    due work. Claimed (`queued`) tasks count too: a cluster that stopped taking its batches is
    stalled as surely as one that is gone. Tasks of paused queues and of deactivated tenants wait on purpose
    and are left out.
    """
    now = now or timezone.now()
    declared = queues.declared_queues()
    paused = set(QueueState.objects.filter(paused=True).values_list("name", flat=True))
    oldest: dict[str, datetime] = {}
    for statuses in (CLAIMABLE_STATUSES, (TaskStatus.QUEUED,)):
        rows = (
            CallbackTask.objects.filter(
                status__in=statuses, next_attempt_at__lte=now, queue__in=declared, tenant__is_active=True
            )
            .values("queue")
            .annotate(first=Min("next_attempt_at"))
            .order_by()
        )
        for row in rows:
            name = row["queue"]
            if name not in paused and (name not in oldest or row["first"] < oldest[name]):
                oldest[name] = row["first"]
    return {name: max((now - first).total_seconds(), 0.0) for name, first in oldest.items()}


def oldest_due_lag_seconds(*, now=None) -> float | None:
    """How long the oldest due task of any declared queue has waited; None when nothing is due."""
    return max(oldest_due_lag_by_queue(now=now).values(), default=None)
