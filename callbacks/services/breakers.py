"""Circuit breakers seen by operators and tenants: reset (the one write) and the reads the API,
the admin and `manage.py breaker` share. The breaker itself lives in callbacks.delivery.breaker,
which this module does not import: services sit below the engine."""

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from callbacks import conf, wakeup
from callbacks.domain.urls import url_origin
from callbacks.domain.vocabulary import CLAIMABLE_STATUSES
from callbacks.errors import NotFoundError
from callbacks.models import BreakerState, CallbackTask, CircuitBreaker, Tenant
from callbacks.selectors import int_key, own_origin_error_column, row_get
from callbacks.services.audit import audit_record

FIELDS = ("id", "origin", *CircuitBreaker.STATE_FIELDS)


def breaker_reset(
    *, breaker: CircuitBreaker, actor_type: str, actor: str, tenant: Tenant | None = None
) -> CircuitBreaker:
    """Close the breaker now and let the tasks it held go at once (they need not wait for the probe
    time they were moved to). `tenant` is who asked, for the audit log (None: an operator)."""
    now = timezone.now()
    with transaction.atomic():
        locked = CircuitBreaker.objects.select_for_update().get(pk=breaker.pk)
        # A tenant's audit log shows it the row: without the breaker's error text, maybe another tenant's.
        shown = snapshot if tenant is None else _without_error
        before = shown(locked)
        held_until = locked.next_probe_at if locked.state != BreakerState.CLOSED else None
        locked.close(now=now)
        locked.save()
        audit_record(
            actor_type=actor_type,
            actor=actor,
            tenant=tenant,
            action="breaker.reset",
            obj=locked,
            before=before,
            after=shown(locked),
        )
    # After the breaker's commit, in a statement of its own: locking tasks while holding the
    # breaker row could deadlock with a claim (which locks tasks, then the breaker).
    if held_until is not None:
        CallbackTask.objects.filter(
            origin=locked.origin, status__in=CLAIMABLE_STATUSES, next_attempt_at=held_until
        ).update(next_attempt_at=now, updated_at=now)
        wakeup.notify_dispatcher()
    breaker.refresh_from_db()
    return locked


def snapshot(breaker: CircuitBreaker) -> dict:
    """The breaker as the API shows it (JSON-ready), for audit before/after."""
    values = {name: getattr(breaker, name) for name in FIELDS}
    for name in ("opened_at", "next_probe_at", "updated_at"):
        values[name] = values[name].isoformat() if values[name] else None
    return values


def _without_error(breaker: CircuitBreaker) -> dict:
    values = snapshot(breaker)
    del values["last_error"]
    return values


# --- reads ---------------------------------------------------------------------------------
def breaker_concurrency(breaker: CircuitBreaker) -> int:
    """Callbacks the origin may have in flight now: the configured limit, or less while it is slowed
    down because it answered 429 or 503."""
    configured = conf.get("MAX_CONCURRENCY_PER_ORIGIN")
    return min(configured, breaker.concurrency_limit or configured)


def breaker_list(*, tenant: Tenant | None = None, state: str | None = None) -> QuerySet[CircuitBreaker]:
    """Breakers by origin; for a tenant, only those of origins it has called (any task, any status), each
    with `own_last_error`: the last error of the tenant's own callbacks there (None when none failed)."""
    queryset = CircuitBreaker.objects.all()
    if tenant is not None:
        queryset = queryset.filter(
            Exists(CallbackTask.objects.filter(tenant=tenant, origin=OuterRef("origin")))
        ).annotate(own_last_error=own_origin_error_column(tenant=tenant))
    if state:
        queryset = queryset.filter(state=state)
    return queryset.order_by("origin", "id")


def breaker_get(*, breaker_id, tenant: Tenant | None = None) -> CircuitBreaker:
    """The breaker with this id; for a tenant, 404 unless it has called the origin."""
    return row_get(breaker_list(tenant=tenant), key=breaker_id, parse=int_key, missing="No such breaker.")


def breaker_find(*, origin_or_id: str) -> CircuitBreaker:
    """By id, or by origin written any way a URL may be (https://Example.com/x -> https://example.com:443)."""
    text = origin_or_id.strip()
    if text.isdigit():
        return breaker_get(breaker_id=text)
    try:
        origin = url_origin(text)
    except (ValueError, KeyError):  # a bad port, a scheme other than http(s) or none
        raise NotFoundError(f"{text!r} is neither a breaker id nor a URL or origin.") from None
    found = CircuitBreaker.objects.filter(origin=origin).first()
    if found is None:
        raise NotFoundError(f"No breaker for {origin} (it has never failed).")
    return found
