"""Tenants: created with the key and secret shown once, rotated by actions, policies saved through the service."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from callbacks import keys, selectors
from callbacks.models import AuditLog, Tenant
from tests.certificates import client_pem

pytestmark = pytest.mark.django_db
LIST = reverse("admin:callbacks_tenant_changelist")
# A change form's fields left as they are (the API keys inline included).
UNCHANGED = {
    "success_statuses": "",
    "api_rate_limit": "",
    "notification_url": "",
    "api_keys-TOTAL_FORMS": "0",
    "api_keys-INITIAL_FORMS": "0",
}
ADD = reverse("admin:callbacks_tenant_add")


def test_create_shows_key_and_secret_once_and_stores_only_the_digest(admin_client):
    response = admin_client.post(ADD, {"name": "initech", "enforce_whitelist": "on"})

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("no-store") or "no-store" in response["Cache-Control"]
    api_key = response.context["rows"][0]["api_key"]
    secret = response.context["rows"][0]["signing_secret"]
    html = response.content.decode()
    assert api_key.startswith("tc_") and api_key in html
    assert secret.startswith("whsec_") and secret in html
    tenant = Tenant.objects.get(name="initech")
    assert tenant.enforce_whitelist
    assert selectors.api_key_lookup(key=api_key).tenant == tenant
    assert tenant.api_keys.get().digest == keys.api_key_digest(api_key)
    assert AuditLog.objects.filter(action="tenant.create", actor="admin", tenant=tenant).exists()

    page = admin_client.get(reverse("admin:callbacks_tenant_change", args=[tenant.pk])).content.decode()
    assert api_key not in page and secret not in page
    assert api_key[:10] in page  # the key's prefix, in the read-only inline


def test_create_refuses_a_taken_name(admin_client, tenant):
    response = admin_client.post(ADD, {"name": tenant.name})

    assert "exists already" in response.content.decode()
    assert Tenant.objects.filter(name=tenant.name).count() == 1


def test_policy_change_goes_through_the_service_with_its_checks(admin_client, tenant):
    url = reverse("admin:callbacks_tenant_change", args=[tenant.pk])
    form = {**UNCHANGED, "max_retries": "7"}

    saved = admin_client.post(url, form)

    assert saved.status_code == 302, saved.content.decode()[:3000]
    tenant.refresh_from_db()
    assert tenant.max_retries == 7
    entry = AuditLog.objects.get(action="tenant.update_policy")
    assert entry.actor == "admin" and entry.after == {"max_retries": 7}

    refused = admin_client.post(url, {**form, "connect_timeout_seconds": "5", "total_timeout_seconds": "2"})

    assert refused.status_code == 200
    assert "must be at least connect_timeout_seconds" in refused.content.decode()
    tenant.refresh_from_db()
    assert tenant.total_timeout_seconds is None
    assert AuditLog.objects.filter(action="tenant.update_policy").count() == 1  # the dry run left nothing


def _rotate(client, action, tenant, **extra):
    return client.post(LIST, {"action": action, ACTION_CHECKBOX_NAME: [str(tenant.pk)], "index": 0, **extra})


def test_rotate_api_key_asks_then_shows_the_new_key_once(admin_client, new_tenant):
    tenant = new_tenant.tenant

    asked = _rotate(admin_client, "rotate_api_key", tenant)

    assert "Yes, rotate" in asked.content.decode()
    assert tenant.api_keys.count() == 1

    shown = _rotate(admin_client, "rotate_api_key", tenant, confirm="yes")

    new_key = shown.context["rows"][0]["api_key"]
    assert new_key in shown.content.decode()
    assert selectors.api_key_lookup(key=new_key).tenant == tenant
    assert selectors.api_key_lookup(key=new_tenant.api_key) is not None  # the old one keeps working


def test_rotate_signing_secret_shows_the_new_secret(admin_client, new_tenant):
    tenant = new_tenant.tenant

    shown = _rotate(admin_client, "rotate_signing_secret", tenant, confirm="yes")

    secret = shown.context["rows"][0]["signing_secret"]
    tenant.refresh_from_db()
    assert secret == tenant.signing_secret and secret in shown.content.decode()
    assert tenant.previous_signing_secret == new_tenant.signing_secret


def test_tenants_cannot_be_deleted_here(admin_client, tenant):
    url = reverse("admin:callbacks_tenant_delete", args=[tenant.pk])

    assert admin_client.post(url, {"post": "yes"}).status_code == 403


def test_a_client_certificate_set_in_the_admin_is_stored_sealed_and_never_shown(admin_client, tenant):
    url = reverse("admin:callbacks_tenant_change", args=[tenant.pk])
    form = UNCHANGED
    cert, key = client_pem()
    _, wrong_key = client_pem()

    refused = admin_client.post(url, {**form, "new_client_certificate": cert, "new_client_key": wrong_key})
    assert refused.status_code == 200
    assert "the key does not belong to the certificate" in refused.content.decode()
    assert Tenant.objects.get(pk=tenant.pk).client_certificate == ""

    saved = admin_client.post(url, {**form, "new_client_certificate": cert, "new_client_key": key})
    assert saved.status_code == 302, saved.content.decode()[:3000]
    stored = Tenant.objects.get(pk=tenant.pk)
    assert stored.client_key.strip() == key.strip() and stored.client_certificate_expires_at
    page = admin_client.get(url).content.decode()
    key_body = key.strip().splitlines()[1]
    assert key_body not in page and "PRIVATE KEY" not in page
    assert "key stored encrypted, never shown" in page
    assert AuditLog.objects.filter(action="client_certificate.set", actor="admin").exists()

    admin_client.post(url, {**form, "remove_client_certificate": "on"})
    assert Tenant.objects.get(pk=tenant.pk).client_certificate == ""


def test_a_refused_form_does_not_echo_the_key(admin_client, tenant):
    url = reverse("admin:callbacks_tenant_change", args=[tenant.pk])
    cert, key = client_pem()
    refused = admin_client.post(
        url, {**UNCHANGED, "new_client_certificate": cert, "new_client_key": key, "max_retries": "-1"}
    )
    assert refused.status_code == 200
    assert key.strip().splitlines()[1] not in refused.content.decode()
