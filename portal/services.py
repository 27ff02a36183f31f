"""Writes on sign-in links: made by an operator, revoked by an operator, used by a tenant. Each writes
an audit row; the link's token never does (it is not stored anywhere)."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from callbacks.domain.vocabulary import ActorType
from callbacks.errors import ApplicationError
from callbacks.models import Tenant
from callbacks.services.audit import audit_record
from portal import links
from portal.models import PortalLink


def portal_link_create(
    *, tenant: Tenant, hours=None, actor_type: str = ActorType.USER, actor: str
) -> tuple[PortalLink, str]:
    """A new link to the tenant's portal, working for `hours` (links.DEFAULT_HOURS when None), and its
    token, which only this return value holds."""
    hours = links.clean_hours(hours)
    token, digest = links.new_token()
    now = timezone.now()
    with transaction.atomic():
        # Read again and locked: a deactivation a moment ago, or under way, wins.
        if not Tenant.objects.select_for_update().filter(pk=tenant.pk, is_active=True).exists():
            raise ApplicationError(
                f"Tenant {tenant.name!r} is deactivated: its portal cannot be opened.", code="tenant_inactive"
            )
        link = PortalLink.objects.create(
            tenant=tenant,
            digest=digest,
            created_by=actor[:200],
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
        audit_record(
            actor_type=actor_type,
            actor=actor,
            tenant=tenant,
            action="portal_link.create",
            obj=link,
            before=None,
            after=_state(link),
        )
    return link, token


def portal_link_revoke(*, link: PortalLink, actor_type: str = ActorType.USER, actor: str) -> PortalLink:
    """The link stops working at once, and so do the portal sessions it opened; revoking a revoked
    link changes nothing."""
    with transaction.atomic():
        current = PortalLink.objects.select_for_update().select_related("tenant").get(pk=link.pk)
        if current.revoked_at is not None:
            return current
        before = _state(current)
        current.revoked_at = timezone.now()
        current.revoked_by = actor[:200]
        current.save(update_fields=["revoked_at", "revoked_by"])
        audit_record(
            actor_type=actor_type,
            actor=actor,
            tenant=current.tenant,
            action="portal_link.revoke",
            obj=current,
            before=before,
            after=_state(current),
        )
    return current


def portal_link_use(*, link: PortalLink) -> PortalLink:
    """A tenant opened the portal with the link: when, in the link and the audit log."""
    with transaction.atomic():
        now = timezone.now()
        PortalLink.objects.filter(pk=link.pk).update(last_used_at=now)
        link.last_used_at = now
        audit_record(
            actor_type=ActorType.TENANT,
            actor=link.actor,
            tenant=link.tenant,
            action="portal_link.use",
            obj=link,
            before=None,
            after=_state(link),
        )
    return link


def _state(link: PortalLink) -> dict:
    return {
        "created_by": link.created_by,
        "expires_at": link.expires_at.isoformat(),
        "revoked_at": link.revoked_at.isoformat() if link.revoked_at else None,
        "last_used_at": link.last_used_at.isoformat() if link.last_used_at else None,
    }
