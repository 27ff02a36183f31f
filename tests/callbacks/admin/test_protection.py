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


PUBLIC = "93.184.215.14"  # a public address: judged without DNS, never connected to


def _checks(response) -> dict:
    return {check.name: check.result for check in response.context["result"].checks}


@pytest.mark.parametrize(
    ("url", "verdict", "whitelist", "matches"),
    [
        (f"https://{PUBLIC}/hooks/paid", "Allowed", "passed", [f"https://{PUBLIC}/hooks"]),
        (f"https://{PUBLIC}/other", "Refused", "refused", []),
        (f"https://{PUBLIC}:8443/hooks", "Refused", "refused", []),
        ("https://evil.test/hooks", "Refused", "refused", []),
    ],
)
def test_check_page_gives_the_whitelist_verdict_of_an_enforcing_tenant_and_the_matching_entry(
    admin_client, tenant, url, verdict, whitelist, matches
):
    tenant.enforce_whitelist = True
    tenant.save()
    whitelist_entry_create(
        tenant=tenant, host=PUBLIC, scheme="https", path_prefix="/hooks", actor_type="user", actor="x"
    )

    response = admin_client.get(CHECK, {"tenant": tenant.pk, "url": url})

    assert _checks(response)["whitelist"] == whitelist
    assert [str(entry) for entry in response.context["result"].matching] == matches
    html = response.content.decode()
    assert f"{verdict}: {url}" in html
    assert "enforces its whitelist" in html and "accepts every URL" not in html


def test_a_tenant_not_enforcing_its_whitelist_passes_it_and_says_so_once(admin_client, tenant):
    response = admin_client.get(CHECK, {"tenant": tenant.pk, "url": f"https://{PUBLIC}/x"})

    html = response.content.decode()
    assert _checks(response) == {
        "URL rules": "passed",
        "whitelist": "passed",
        "gone": "passed",
        "SSRF guard": "passed",
    }
    assert f"Allowed: https://{PUBLIC}/x" in html
    assert "Denied" not in html and "Refused" not in html
    assert "does not enforce its whitelist, so the whitelist accepts every URL" in html


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.1.2.3/hook", "a private address"),
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        ("http://localhost:8000/", "loopback"),
        ("http://127.0.0.1:8000/", "a loopback address"),
    ],
)
def test_internal_addresses_are_refused_by_the_ssrf_guard_whatever_the_whitelist(
    admin_client, tenant, settings, url, reason
):
    settings.CALLBACKS = {**settings.CALLBACKS, "ALLOWED_NETWORKS": []}

    response = admin_client.get(CHECK, {"tenant": tenant.pk, "url": url})

    checks = {check.name: check for check in response.context["result"].checks}
    assert checks["SSRF guard"].result == "refused" and reason in checks["SSRF guard"].detail
    assert checks["URL rules"].result == "passed" and checks["whitelist"].result == "passed"
    assert f"Refused: {url}" in response.content.decode()


def test_an_address_the_installation_exempts_is_allowed_and_the_setting_named(admin_client, tenant, settings):
    from ipaddress import ip_network

    settings.CALLBACKS = {**settings.CALLBACKS, "ALLOWED_NETWORKS": [ip_network("10.0.0.0/8")]}

    response = admin_client.get(CHECK, {"tenant": tenant.pk, "url": "http://10.1.2.3/hook"})

    guard = [check for check in response.context["result"].checks if check.name == "SSRF guard"][0]
    assert guard.result == "passed" and "CALLBACKS_ALLOWED_NETWORKS" in guard.detail
    # The metadata address stays refused, whatever is exempt.
    settings.CALLBACKS = {**settings.CALLBACKS, "ALLOWED_NETWORKS": [ip_network("0.0.0.0/0")]}
    metadata = admin_client.get(CHECK, {"tenant": tenant.pk, "url": "http://169.254.169.254/"})
    assert metadata.context["result"].verdict == "refused"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://files.example.com/x", "only http and https"),
        ("https://user:pw@hooks.example.com/", "credentials in the URL"),
        ("https://hooks.example.com/" + "a" * 2000, "at most 2000 characters"),
    ],
)
def test_url_rules_refuse_and_the_later_checks_are_not_made(admin_client, tenant, url, reason):
    response = admin_client.get(CHECK, {"tenant": tenant.pk, "url": url})

    checks = response.context["result"].checks
    assert (checks[0].name, checks[0].result) == ("URL rules", "refused") and reason in checks[0].detail
    assert {check.result for check in checks[1:]} == {"not checked"}
    assert "Refused: " in response.content.decode()


def test_a_url_gone_for_the_tenant_is_refused(admin_client, tenant):
    url = f"https://{PUBLIC}/gone"
    gone_url_mark(tenant_id=tenant.pk, url=url, task_id=None, notify=False)

    response = admin_client.get(CHECK, {"tenant": tenant.pk, "url": url})

    assert _checks(response)["gone"] == "refused"
    assert response.context["result"].verdict == "refused"


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
