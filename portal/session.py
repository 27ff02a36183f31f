"""A portal session: Django's session, with keys of its own naming the link and its tenant. Never a
Django user: a portal session is anonymous to the admin and to the operators' API.

Every portal view goes through `tenant_view`, which reads the link again on each request, so a link
revoked or expired, or a tenant deactivated, ends the session at its next request.
"""

import functools

from django.middleware.csrf import rotate_token
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache

from callbacks.errors import NotFoundError
from portal.models import PortalLink
from portal.selectors import portal_link_active

LINK_KEY = "portal.link"
TENANT_KEY = "portal.tenant"
ENDED_TEMPLATE = "portal/ended.html"
NOT_FOUND_TEMPLATE = "portal/not_found.html"


def sign_in(request, link: PortalLink) -> None:
    """A fresh session bound to the link: whatever the browser's session held before (an operator's
    admin login, another tenant's portal) is dropped, and the session key changes (no fixation)."""
    request.session.flush()
    rotate_token(request)  # as Django's login() does: a CSRF token planted before sign-in is worthless after
    request.session[LINK_KEY] = link.pk
    request.session[TENANT_KEY] = str(link.tenant_id)
    # The cookie dies with the link; the check below ends the session earlier if it is revoked.
    request.session.set_expiry(link.expires_at)


def sign_out(request) -> None:
    request.session.flush()


def tenant_view(view):
    """The view called as view(request, tenant, ...) for a valid portal session, with request.portal_link
    set; a page saying the session ended (403) otherwise. A row of another tenant, which the tenant-scoped
    selectors report as missing, is a 404 page, the same as for an id that never existed."""

    @never_cache
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        link = portal_link_active(
            link_id=request.session.get(LINK_KEY), tenant_id=request.session.get(TENANT_KEY)
        )
        if link is None:
            had_session = LINK_KEY in request.session
            if had_session:
                request.session.flush()
            return TemplateResponse(request, ENDED_TEMPLATE, {"had_session": had_session}, status=403)
        request.portal_link = link
        try:
            return view(request, link.tenant, *args, **kwargs)
        except NotFoundError as exc:
            context = {"tenant": link.tenant, "portal_link": link, "message": exc.message}
            return TemplateResponse(request, NOT_FOUND_TEMPLATE, context, status=404)

    return wrapper
