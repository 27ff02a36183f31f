"""manage.py portal_link: a link that works, --list, --revoke, and clear errors."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from callbacks.domain.vocabulary import ActorType
from callbacks.services.tenants import tenant_deactivate
from portal.models import PortalLink


def run(*args) -> str:
    out = StringIO()
    call_command("portal_link", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def sign_in_with(url: str) -> Client:
    client = Client()
    path = url.removeprefix("http://127.0.0.1:8000")
    assert client.get(path).status_code == 200
    client.post(path)
    return client


def test_the_printed_url_signs_in_to_the_tenants_portal(tenant):
    url = run("acme", "--hours", "3")
    assert url.startswith("http://127.0.0.1:8000/portal/login/")
    client = sign_in_with(url)
    assert client.get("/portal/").status_code == 200
    link = PortalLink.objects.get()
    assert link.created_by == "manage.py"
    assert round((link.expires_at - link.created_at).total_seconds()) == 3 * 3600


def test_the_tenant_may_be_named_by_id_and_the_base_url_given(tenant):
    url = run(str(tenant.pk), "--base-url", "https://callbacks.example.com/")
    assert url.startswith("https://callbacks.example.com/portal/login/")


def test_revoke_ends_the_link_and_its_sessions(tenant):
    client = sign_in_with(run("acme"))
    link = PortalLink.objects.get()
    assert "revoked link" in run("acme", "--revoke", str(link.pk))
    assert client.get("/portal/").status_code == 403
    with pytest.raises(CommandError, match="revoked already"):
        run("acme", "--revoke", str(link.pk))
    assert "revoked" in run("acme", "--list")


@pytest.mark.parametrize(
    "args,message",
    [
        (["nobody"], "no tenant named 'nobody'"),
        (["acme", "--hours", "500"], "between 1 and 168 hours"),
        (["acme", "--revoke", "12345"], "has no link 12345"),
    ],
)
def test_clear_errors(tenant, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_a_deactivated_tenant_gets_no_link(tenant):
    tenant_deactivate(tenant=tenant, actor_type=ActorType.USER, actor="ops")
    with pytest.raises(CommandError, match="deactivated"):
        run("acme")
    assert not PortalLink.objects.exists()


def test_another_tenants_link_cannot_be_revoked_through_this_tenant(tenant, other_api):
    run("globex")
    other = PortalLink.objects.get()
    with pytest.raises(CommandError, match=f"has no link {other.pk}"):
        run("acme", "--revoke", str(other.pk))
    other.refresh_from_db()
    assert other.revoked_at is None
