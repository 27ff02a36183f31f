"""The sign-in link in the admin: the button on the tenant's page, the link shown once, the list and
its Revoke action."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from callbacks.models import AuditLog
from portal.models import PortalLink


@pytest.fixture
def admin_client_(db):
    user = get_user_model().objects.create_superuser("operator", "ops@example.com", "pw-long-enough-1")
    client = Client()
    client.force_login(user)
    return client


def test_the_tenant_page_has_the_button(admin_client_, tenant):
    page = admin_client_.get(reverse("admin:callbacks_tenant_change", args=[tenant.pk])).content.decode()
    assert 'id="tc-portal-link-form"' in page
    assert reverse("admin:portal_portallink_issue", args=[tenant.pk]) in page


def test_the_button_shows_a_working_link_once(admin_client_, tenant):
    response = admin_client_.post(reverse("admin:portal_portallink_issue", args=[tenant.pk]), {"hours": "8"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    url = re.search(r'id="tc-portal-url">([^<]+)<', response.content.decode()).group(1)
    assert url.startswith("http://testserver/portal/login/")
    link = PortalLink.objects.get()
    assert link.created_by == "operator"
    assert url.rsplit("/", 2)[1] not in str(list(AuditLog.objects.values_list("after", flat=True)))
    portal = Client()
    path = url.removeprefix("http://testserver")
    portal.get(path)
    portal.post(path)
    assert portal.get("/portal/").status_code == 200


def test_the_button_only_posts(admin_client_, tenant):
    assert admin_client_.get(reverse("admin:portal_portallink_issue", args=[tenant.pk])).status_code == 405
    assert not PortalLink.objects.exists()


def test_a_bad_lifetime_is_said_on_the_tenant_page(admin_client_, tenant):
    response = admin_client_.post(
        reverse("admin:portal_portallink_issue", args=[tenant.pk]), {"hours": "999"}, follow=True
    )
    assert "a whole number of hours from 1 to 168" in response.content.decode()
    assert not PortalLink.objects.exists()


def test_links_are_listed_and_revoked_after_a_confirmation(admin_client_, tenant):
    admin_client_.post(reverse("admin:portal_portallink_issue", args=[tenant.pk]))
    link = PortalLink.objects.get()
    listing = admin_client_.get(reverse("admin:portal_portallink_changelist")).content.decode()
    assert "works" in listing and "acme" in listing
    changelist = reverse("admin:portal_portallink_changelist")
    asked = admin_client_.post(changelist, {"action": "revoke", "_selected_action": [link.pk]})
    assert "Revoke these sign-in links?" in asked.content.decode()
    link.refresh_from_db()
    assert link.revoked_at is None
    admin_client_.post(changelist, {"action": "revoke", "_selected_action": [link.pk], "confirm": "yes"})
    link.refresh_from_db()
    assert link.revoked_at is not None and link.revoked_by == "operator"


def test_a_staff_user_without_the_permission_gets_no_link(db, tenant):
    user = get_user_model().objects.create_user("viewer", password="pw-long-enough-1", is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.post(reverse("admin:portal_portallink_issue", args=[tenant.pk])).status_code == 403
    assert not PortalLink.objects.exists()
