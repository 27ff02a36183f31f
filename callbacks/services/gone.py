"""URLs gone for a tenant: a receiver that answered 410 Gone asked not to be called again.

The engine marks a URL when a callback to it is answered 410 (inside the transaction recording that
attempt); from then on the tenant's callbacks to it end `failed`, outcome `gone`, without a request,
until the tenant (API) or an operator (admin, `manage.py gone clear`) clears the mark. A mark is
announced to the tenant once, as a `url.gone` notification.
"""

import hashlib
import logging
import uuid

from django.db import transaction

from callbacks.domain.vocabulary import ActorType
from callbacks.models import GoneUrl, Tenant
from callbacks.services.audit import audit_record
from callbacks.services.notifications import notify_gone

logger = logging.getLogger(__name__)
ACTOR = "callbacks.delivery"


def url_digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def _snapshot(gone: GoneUrl) -> dict:
    return {"url": gone.url, "marked_at": gone.marked_at.isoformat(), "task_id": str(gone.task_id or "")}


def gone_url_mark(
    *, tenant_id: uuid.UUID, url: str, task_id: uuid.UUID, notify: bool = True
) -> GoneUrl | None:
    """Mark `url` gone for the tenant (its receiver answered 410 to task `task_id`); the new mark, or
    None when it was marked already. A new mark notifies the tenant once (unless `notify` is False:
    the 410 answered a notification itself)."""
    with transaction.atomic():
        gone, created = GoneUrl.objects.get_or_create(
            tenant_id=tenant_id, url_digest=url_digest(url), defaults={"url": url, "task_id": task_id}
        )
        if not created:
            return None
        tenant = Tenant.objects.get(pk=tenant_id)
        audit_record(
            actor_type=ActorType.SYSTEM,
            actor=ACTOR,
            tenant=tenant,
            action="gone_url.mark",
            obj=gone,
            before=None,
            after=_snapshot(gone),
        )
    if notify:
        try:
            with transaction.atomic():
                notify_gone(tenant=tenant, gone=gone)
        except Exception:
            logger.exception("creating the url.gone notification of tenant %s failed", tenant_id)
    return gone


def gone_url_clear(*, gone: GoneUrl, actor_type: str, actor: str) -> None:
    """Send to the URL again: the tenant's callbacks to it are delivered from now on (those already
    ended `gone` stay so; retry them to send them)."""
    with transaction.atomic():
        deleted, _ = GoneUrl.objects.filter(pk=gone.pk).delete()
        if not deleted:
            return
        audit_record(
            actor_type=actor_type,
            actor=actor,
            tenant=gone.tenant,
            action="gone_url.clear",
            obj=gone,
            before=_snapshot(gone),
            after=None,
        )
