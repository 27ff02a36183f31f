"""Tenants: created with the key and secret shown once, rotated by actions, policies saved through the service."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from callbacks import keys, selectors
from callbacks.models import AuditLog, Tenant
from tests.certificates import client_pem
from tests.leaks import private_texts

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
    assert selectors.api_key_lookup(key=new_tenant.api_key) is None  # rotated: the old one is revoked


def test_rotate_api_key_may_keep_the_old_key_and_give_the_whitelist_scope(admin_client, new_tenant):
    tenant = new_tenant.tenant

    shown = _rotate(
        admin_client, "rotate_api_key", tenant, confirm="yes", keep_old="on", manages_whitelist="on"
    )

    new_key = selectors.api_key_lookup(key=shown.context["rows"][0]["api_key"])
    assert new_key.manages_whitelist
    assert selectors.api_key_lookup(key=new_tenant.api_key) is not None  # kept for a switch without downtime


def test_deactivate_asks_then_holds_the_tenant_and_reactivate_lets_it_go(admin_client, new_tenant):
    tenant = new_tenant.tenant

    asked = _rotate(admin_client, "deactivate", tenant)
    assert "Yes, deactivate" in asked.content.decode()
    tenant.refresh_from_db()
    assert tenant.is_active

    _rotate(admin_client, "deactivate", tenant, confirm="yes")
    tenant.refresh_from_db()
    assert not tenant.is_active
    assert selectors.api_key_lookup(key=new_tenant.api_key) is None

    _rotate(admin_client, "reactivate", tenant)
    tenant.refresh_from_db()
    assert tenant.is_active
    assert selectors.api_key_lookup(key=new_tenant.api_key) is not None
    assert list(AuditLog.objects.filter(tenant=tenant, actor="admin").values_list("action", flat=True)) == [
        "tenant.deactivate",
        "tenant.reactivate",
    ]


def test_an_api_key_is_revoked_from_the_keys_page_after_asking(admin_client, new_tenant):
    api_key = new_tenant.tenant.api_keys.get()
    keys_list = reverse("admin:callbacks_tenantapikey_changelist")
    assert api_key.prefix in admin_client.get(keys_list).content.decode()
    form = {"action": "revoke", ACTION_CHECKBOX_NAME: [str(api_key.pk)], "index": 0}

    asked = admin_client.post(keys_list, form)
    assert "Yes, revoke" in asked.content.decode()
    assert selectors.api_key_lookup(key=new_tenant.api_key) is not None

    admin_client.post(keys_list, {**form, "confirm": "yes"})
    assert selectors.api_key_lookup(key=new_tenant.api_key) is None
    assert AuditLog.objects.get(action="api_key.revoke").actor == "admin"


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


def test_the_v1a_key_rotates_and_only_its_public_keys_are_ever_shown(admin_client, tenant):
    old_private = tenant.signing_private_key

    shown = _rotate(admin_client, "rotate_signing_key", tenant, confirm="yes")
    switched = _rotate(admin_client, "sign_with_v1a", tenant)

    tenant.refresh_from_db()
    new_private = tenant.signing_private_key
    assert new_private != old_private and tenant.signing_scheme == "v1a"
    public_key = shown.context["rows"][0]["public_key"]
    assert public_key == keys.public_key_of(new_private) and public_key in shown.content.decode()
    change = admin_client.get(reverse("admin:callbacks_tenant_change", args=[tenant.pk]))
    assert public_key in change.content.decode()
    assert keys.public_key_of(old_private) in change.content.decode()  # still signing: the overlap
    pages = [
        shown,
        switched,
        change,
        admin_client.get(LIST),
        admin_client.get(reverse("admin:callbacks_auditlog_changelist")),
        *(
            admin_client.get(reverse("admin:callbacks_auditlog_change", args=[row.pk]))
            for row in AuditLog.objects.filter(tenant=tenant)
        ),
    ]
    for page in pages:
        assert page.status_code in (200, 302)
        html = page.content.decode()
        assert not any(part in html for part in private_texts(old_private, new_private))


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
