"""The portal's reads. Every one that a tenant's page uses takes the tenant and answers only its rows;
what is shared with the API (tasks, schedules, gone URLs) comes from callbacks.selectors."""

from django.db.models import QuerySet
from django.utils import timezone

from callbacks.errors import NotFoundError
from callbacks.models import CallbackSchedule, CallbackTask, Tenant, UrlWhitelistEntry
from callbacks.selectors import int_key, row_get, task_list, uuid_key
from portal import links
from portal.models import PortalLink


def portal_link_for_token(*, token: str) -> PortalLink | None:
    """The valid link this token opens (not expired, not revoked, its tenant active), else None."""
    digest = links.token_digest(token)
    if digest is None:
        return None
    return _valid().filter(digest=digest).first()


def portal_link_active(*, link_id, tenant_id) -> PortalLink | None:
    """The link a portal session was opened with, if it is still valid for that tenant."""
    if link_id is None or tenant_id is None:
        return None
    return _valid().filter(pk=link_id, tenant_id=tenant_id).first()


def _valid() -> QuerySet[PortalLink]:
    return PortalLink.objects.select_related("tenant").filter(
        revoked_at__isnull=True, expires_at__gt=timezone.now(), tenant__is_active=True
    )


def portal_link_list(*, tenant: Tenant) -> QuerySet[PortalLink]:
    return PortalLink.objects.filter(tenant=tenant).order_by("-created_at", "-id")


def portal_link_get(*, tenant: Tenant, link_id) -> PortalLink:
    """The tenant's link with this id, else NotFoundError (another tenant's link too)."""
    return row_get(portal_link_list(tenant=tenant), key=link_id, parse=int_key, missing="No such link.")


def tenant_by_id(*, tenant_id) -> Tenant | None:
    try:
        return row_get(Tenant.objects.all(), key=tenant_id, parse=uuid_key, missing="No such tenant.")
    except NotFoundError:
        return None


def tenant_named(*, key: str) -> Tenant | None:
    """The tenant with this name, or with this id; None when there is none."""
    return Tenant.objects.filter(name=key).first() or tenant_by_id(tenant_id=key)


def whitelist_list(*, tenant: Tenant) -> QuerySet[UrlWhitelistEntry]:
    return UrlWhitelistEntry.objects.filter(tenant=tenant).order_by(
        "host", "scheme", "port", "path_prefix", "id"
    )


def schedule_tasks(*, tenant: Tenant, schedule: CallbackSchedule, limit: int = 10) -> list[CallbackTask]:
    """The last callbacks a schedule of the tenant made, newest first."""
    return list(task_list(tenant=tenant).filter(schedule=schedule)[:limit])
