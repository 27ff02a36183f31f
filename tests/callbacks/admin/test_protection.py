"""Whitelist entries (validated forms, the service, the check page), breakers (list, reset) and gone URLs
(list, clear)."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from callbacks.models import AuditLog, BreakerState, CircuitBreaker, GoneUrl, UrlWhitelistEntry
from callbacks.services.gone import gone_url_mark
from callbacks.services.whitelist import whitelist_entry_create
from tests.factories import make_task

pytestmark = pytest.mark.django_db
ADD = reverse("admin:callbacks_urlwhitelistentry_add")
CHECK = reverse("admin:callbacks_urlwhitelistentry_check")


def entry_form(tenant, **fields):
    return {
        "tenant": str(tenant.pk),
        "host": "",
        "scheme": "",
        "port": "",
        "path_prefix": "",
        "enabled": "on",
        "note": "",
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"host": "*.*.example.com"}, "host", "only one leading"),
        ({"host": "api.example.com/hooks"}, "host", "without scheme, port or path"),
        ({"host": "example.com", "port": "70000"}, "port", "1 to 65535"),
        ({"host": "example.com", "path_prefix": "hooks"}, "path_prefix", "must start with /"),
        ({"host": "example.com", "path_prefix": "/a/../b"}, "path_prefix", ". or .. segments"),
    ],
)
def test_invalid_patterns_are_refused_with_the_reason_on_the_field(
    admin_client, tenant, fields, field, message
):
    response = admin_client.post(ADD, entry_form(tenant, **fields))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert any(message in text for text in errors[field]), errors
    assert not UrlWhitelistEntry.objects.exists()


def test_a_valid_entry_is_normalised_and_saved_through_the_service(admin_client, tenant):
    response = admin_client.post(
        ADD, entry_form(tenant, host="API.Example.COM.", scheme="https", path_prefix="/hooks", note="billing")
    )

    assert response.status_code == 302
    entry = UrlWhitelistEntry.objects.get()
    assert (entry.host, entry.scheme, entry.port, entry.path_prefix) == (
        "api.example.com",
        "https",
        None,
        "/hooks",
    )
    audit = AuditLog.objects.get(action="whitelist.add")
    assert audit.actor == "admin" and audit.object_id == str(entry.pk)


def test_a_duplicate_entry_is_a_form_error(admin_client, tenant):
    whitelist_entry_create(tenant=tenant, host="example.com", actor_type="user", actor="x")

    response = admin_client.post(ADD, entry_form(tenant, host="EXAMPLE.com"))

    assert response.status_code == 200
    assert "has this entry already" in response.content.decode()
    assert UrlWhitelistEntry.objects.count() == 1


def test_edit_and_delete_go_through_the_service(admin_client, tenant):
    entry = whitelist_entry_create(tenant=tenant, host="example.com", actor_type="user", actor="x")
    change = reverse("admin:callbacks_urlwhitelistentry_change", args=[entry.pk])

    edited = admin_client.post(
        change,
        {"host": "*.example.com", "scheme": "", "port": "8443", "path_prefix": "", "note": "", "enabled": ""},
    )

    assert edited.status_code == 302
    entry.refresh_from_db()
    assert (entry.host, entry.port, entry.enabled) == ("*.example.com", 8443, False)
    assert AuditLog.objects.filter(action="whitelist.update", actor="admin").exists()

    admin_client.post(reverse("admin:callbacks_urlwhitelistentry_delete", args=[entry.pk]), {"post": "yes"})

    assert not UrlWhitelistEntry.objects.exists()
    assert AuditLog.objects.filter(action="whitelist.remove", actor="admin").exists()


@pytest.mark.parametrize(
    ("url", "allowed", "matches"),
    [
        ("https://api.example.com/hooks/paid", True, ["https://api.example.com/hooks"]),
        ("https://api.example.com/other", False, []),
        ("https://api.example.com:8443/hooks", False, []),
        ("https://evil.test/hooks", False, []),
    ],
)
def test_check_page_says_allowed_or_denied_and_which_entry_matches(
    admin_client, tenant, url, allowed, matches
):
    whitelist_entry_create(
        tenant=tenant,
        host="api.example.com",
        scheme="https",
        path_prefix="/hooks",
        actor_type="user",
        actor="x",
    )

    response = admin_client.get(CHECK, {"tenant": tenant.pk, "url": url})

    assert response.context["allowed"] is allowed
    assert [str(entry) for entry in response.context["matching"]] == matches
    verdict = "Allowed" if allowed else "Denied"
    assert f"{verdict}: {url}" in response.content.decode()


def test_check_page_says_whether_the_tenant_enforces_it(admin_client, tenant):
    response = admin_client.get(CHECK, {"tenant": tenant.pk, "url": "https://x.example.com/"})

    assert "does not enforce its whitelist" in response.content.decode()


def test_breakers_list_and_reset(admin_client, tenant):
    breaker = CircuitBreaker.objects.create(
        origin="https://down.example.com:443", state=BreakerState.OPEN, consecutive_failures=9, open_count=2
    )
    listing = admin_client.get(reverse("admin:callbacks_circuitbreaker_changelist"), {"state": "open"})
    assert "https://down.example.com:443" in listing.content.decode()

    response = admin_client.post(
        reverse("admin:callbacks_circuitbreaker_changelist"),
        {"action": "reset", ACTION_CHECKBOX_NAME: [str(breaker.pk)], "index": 0},
        follow=True,
    )

    assert "Reset: 1." in [str(m) for m in response.context["messages"]]
    breaker.refresh_from_db()
    assert breaker.state == BreakerState.CLOSED


def test_the_breakers_list_shows_the_concurrency_an_origin_slowed_down_has_left(admin_client, settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "MAX_CONCURRENCY_PER_ORIGIN": 20}
    CircuitBreaker.objects.create(origin="https://busy.example.com:443", concurrency_limit=5)

    listing = admin_client.get(reverse("admin:callbacks_circuitbreaker_changelist")).content.decode()

    assert "concurrency now" in listing.lower()
    assert "5 (slowed down)" in listing


def test_gone_urls_are_listed_and_cleared_by_an_action(admin_client, tenant):
    url = "http://127.0.0.1:9200/hook"
    gone = gone_url_mark(tenant_id=tenant.id, url=url, task_id=make_task(tenant=tenant, url=url).id)
    changelist = reverse("admin:callbacks_goneurl_changelist")

    page = admin_client.get(changelist)
    assert page.status_code == 200 and url in page.content.decode() and tenant.name in page.content.decode()

    cleared = admin_client.post(
        changelist, {"action": "clear", ACTION_CHECKBOX_NAME: [str(gone.pk)], "index": 0}
    )

    assert cleared.status_code == 302
    assert not GoneUrl.objects.exists()
    assert AuditLog.objects.get(action="gone_url.clear").actor == "admin"
