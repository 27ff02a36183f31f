"""Liveness and readiness.

/readyz fails when the service cannot deliver even though the web side answers: the database
or broker is gone, no worker or dispatcher has beaten lately, or due callbacks wait too long
(the silent stall behind a healthy API that systems like this are known for).

Tenants' client certificates expiring within 14 days are reported in its details, without failing
it: the service still delivers, but those receivers will refuse the tenant once they expire.
"""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone

from callbacks import conf, selectors
from callbacks.domain.certificates import EXPIRY_WARNING
from callbacks.domain.vocabulary import CLAIMABLE_STATUSES
from callbacks.models import CallbackTask, QueueState, TaskStatus
from monitoring import access, heartbeats


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    checks = readiness_checks()
    ok = all(check["ok"] for check in checks.values())
    answer = {"status": "ok" if ok else "unavailable"}
    # The status code is all a load balancer needs; the checks name processes and errors.
    if access.may_read_internals(request):
        answer["checks"] = checks
    return JsonResponse(answer, status=200 if ok else 503)


def readiness_checks() -> dict:
    checks = {"database": _check_database()}
    if not checks["database"]["ok"]:
        return checks  # every other check reads the database
    checks["broker"] = _check_broker()
    now = timezone.now()
    checks["workers"] = _check_alive(heartbeats.WORKER, now)
    checks["dispatcher"] = _check_alive(heartbeats.DISPATCHER, now)
    checks["queue"] = _check_queue_draining(now)
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
def _check_queue_draining(now):
    threshold = conf.get("READY_MAX_LAG_SECONDS")
    lag = oldest_due_lag_seconds(now=now)
    return {
        "ok": lag is None or lag <= threshold,
        "oldest_due_seconds": round(lag, 3) if lag is not None else None,
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


def oldest_due_lag_seconds(*, now=None) -> float | None:
    """How long the oldest due task not yet started has waited; None when nothing is due.

    Claimed (`queued`) tasks count too: with every worker gone, the dispatcher still claims
    work into the broker, and that stall is exactly what readiness must catch. Tasks of
    paused queues and of deactivated tenants wait on purpose and are left out.
    """
    now = now or timezone.now()
    paused = list(QueueState.objects.filter(paused=True).values_list("name", flat=True))
    oldest = None
    # Two range scans, one per partial index: claimable rows by next_attempt_at, and the
    # few handed-out rows (bounded by the dispatcher's backpressure).
    for statuses in (CLAIMABLE_STATUSES, (TaskStatus.QUEUED,)):
        due = CallbackTask.objects.filter(
            status__in=statuses, next_attempt_at__lte=now, tenant__is_active=True
        )
        if paused:
            due = due.exclude(queue__in=paused)
        first = due.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
        if first is not None and (oldest is None or first < oldest):
            oldest = first
    return None if oldest is None else max((now - oldest).total_seconds(), 0.0)
