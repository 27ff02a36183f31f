"""Signing in with a link and what a portal session may reach: links that expired, were revoked, were
altered or belong to a deactivated tenant are refused; revoking ends an open session at its next
request; the session is never an admin login nor an operator of the API."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from callbacks.domain.vocabulary import ActorType
from callbacks.models import AuditLog
from callbacks.services.tenants import tenant_deactivate
from portal.models import PortalLink
from portal.services import portal_link_create, portal_link_revoke
from tests.portal.conftest import signed_in

TASKS = reverse("portal:tasks")


def test_opening_a_link_asks_first_and_starts_no_session(a):
    link, token = portal_link_create(tenant=a.tenant, actor="ops")
    client = Client()
    response = client.get(reverse("portal:signin", args=[token]))
    assert response.status_code == 200
    assert "Sign in to the callbacks portal of acme" in response.content.decode()
    assert response["Referrer-Policy"] == "same-origin"
    # A link scanner's GET neither signs in nor counts as a use.
    assert client.get(TASKS).status_code == 403
    link.refresh_from_db()
    assert link.last_used_at is None
    assert not AuditLog.objects.filter(action="portal_link.use").exists()


def test_pressing_sign_in_opens_the_tenants_portal_and_records_the_use(a):
    client = signed_in(a.tenant)
    response = client.get(TASKS)
    assert response.status_code == 200
    assert "Task Center callbacks — acme" in response.content.decode()
    client.link.refresh_from_db()
    assert client.link.last_used_at is not None
    use = AuditLog.objects.get(action="portal_link.use")
    assert (use.actor_type, use.actor, use.tenant, use.object_id) == (
        ActorType.TENANT,
        f"portal link {client.link.pk}",
        a.tenant,
        str(client.link.pk),
    )


def refused(token) -> bool:
    client = Client()
    url = reverse("portal:signin", args=[token])
    get, post = client.get(url), client.post(url)
    return get.status_code == post.status_code == 403 and client.get(TASKS).status_code == 403


def test_an_expired_link_is_refused(a):
    link, token = portal_link_create(tenant=a.tenant, actor="ops")
    PortalLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert refused(token)


def test_a_revoked_link_is_refused(a):
    link, token = portal_link_create(tenant=a.tenant, actor="ops")
    portal_link_revoke(link=link, actor="ops")
    assert refused(token)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # the signature
        lambda t: ("x" if t[0] != "x" else "y") + t[1:],  # the secret, signature kept
        lambda t: t.split(".")[0],  # no signature
        lambda t: "",
        lambda t: "garbage.garbage",
    ],
    ids=["signature", "secret", "unsigned", "empty", "garbage"],
)
def test_a_tampered_token_is_refused(a, tamper):
    _, token = portal_link_create(tenant=a.tenant, actor="ops")
    tampered = tamper(token)
    if not tampered:
        assert Client().get("/portal/login//").status_code == 404
        return
    assert refused(tampered)


def test_a_deactivated_tenants_link_is_refused(a):
    _, token = portal_link_create(tenant=a.tenant, actor="ops")
    tenant_deactivate(tenant=a.tenant, actor_type=ActorType.USER, actor="ops")
    assert refused(token)


def test_revoking_the_link_ends_an_open_session_at_its_next_request(portal, a):
    assert portal.get(TASKS).status_code == 200
    portal_link_revoke(link=portal.link, actor="ops")
    response = portal.get(TASKS)
    assert response.status_code == 403
    assert "Your portal session has ended" in response.content.decode()
    # And for good: the session was dropped, not only refused once.
    assert "portal.link" not in portal.session
    assert portal.post(reverse("portal:replay"), {"confirm": "yes"}).status_code == 403


def test_expiry_and_deactivation_end_an_open_session_too(a):
    first, second = signed_in(a.tenant), signed_in(a.tenant)
    PortalLink.objects.filter(pk=first.link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert first.get(TASKS).status_code == 403
    assert second.get(TASKS).status_code == 200
    tenant_deactivate(tenant=a.tenant, actor_type=ActorType.USER, actor="ops")
    assert second.get(TASKS).status_code == 403


def test_a_session_for_one_link_does_not_survive_on_another_tenants_id(portal, a, b):
    """The session names link and tenant: changing the tenant in it (were it ever possible) finds nothing."""
    session = portal.session
    session["portal.tenant"] = str(b.tenant.pk)
    session.save()
    assert portal.get(TASKS).status_code == 403


def test_signing_out_ends_the_session(portal):
    response = portal.post(reverse("portal:signout"))
    assert response.status_code == 302 and response["Location"] == reverse("portal:signed-out")
    assert portal.get(TASKS).status_code == 403
    assert portal.get(reverse("portal:signout")).status_code == 405


def test_the_portal_session_cannot_reach_the_admin(portal):
    for path in ("/admin/", "/admin/callbacks/tenant/", "/admin/dashboard/", "/admin/portal/portallink/"):
        response = portal.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/admin/login/"), path


def test_the_portal_session_is_no_operator_nor_tenant_of_the_api(portal):
    assert portal.get("/api/v1/settings/").status_code in (401, 403)
    assert portal.get("/api/v1/breakers/").status_code in (401, 403)
    assert portal.get("/api/v1/queues/").status_code in (401, 403)
    assert portal.get("/api/v1/callbacks/").status_code == 401


def test_signing_in_drops_an_admin_login_of_the_same_browser(a):
    """A portal session is the tenant's alone: an operator who opens a link in their browser is
    logged out of the admin there, rather than mixing both in one session."""
    get_user_model().objects.create_superuser("operator", "ops@example.com", "pw-long-enough-1")
    client = Client()
    client.login(username="operator", password="pw-long-enough-1")
    assert client.get("/admin/").status_code == 200
    _, token = portal_link_create(tenant=a.tenant, actor="ops")
    client.post(reverse("portal:signin", args=[token]))
    assert client.get(TASKS).status_code == 200
    assert client.get("/admin/").status_code == 302


def test_every_post_needs_the_csrf_token(a):
    client = signed_in(a.tenant, enforce_csrf=True)
    task = a.tasks["dead"]
    assert client.post(reverse("portal:task-retry", args=[task.pk])).status_code == 403
    assert client.post(reverse("portal:signout")).status_code == 403
    task.refresh_from_db()
    assert task.status == "dead"
    _, token = portal_link_create(tenant=a.tenant, actor="ops")
    assert Client(enforce_csrf_checks=True).post(reverse("portal:signin", args=[token])).status_code == 403


def test_pages_carry_the_sites_security_headers_and_are_not_cached(portal):
    response = portal.get(TASKS)
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]


def test_an_unknown_visitor_is_told_how_to_get_in():
    response = Client().get(TASKS)
    assert response.status_code == 403
    assert "sign-in link" in response.content.decode()
