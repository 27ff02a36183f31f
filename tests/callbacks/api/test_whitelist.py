"""The whitelist through the API (GET/POST /api/v1/whitelist/, DELETE .../{id}/) and at task creation."""

from callbacks.models import AuditLog, CallbackTask, UrlWhitelistEntry

URL = "/api/v1/whitelist/"
CALLBACKS = "/api/v1/callbacks/"


def test_add_list_show_and_remove(api, tenant):
    created = api.post(URL, {"host": "*.Example.com", "scheme": "https", "note": "billing"}, format="json")
    assert created.status_code == 201, created.content
    entry = created.json()
    assert entry["host"] == "*.example.com" and entry["scheme"] == "https" and entry["port"] is None
    assert entry["path_prefix"] == "" and entry["enabled"] is True and entry["note"] == "billing"
    api.post(URL, {"host": "203.0.113.7", "port": 8443, "path_prefix": "/hooks"}, format="json")

    listed = api.get(URL).json()
    assert [item["host"] for item in listed["results"]] == ["203.0.113.7", "*.example.com"]
    assert api.get(f"{URL}{entry['id']}/").json() == entry

    assert api.delete(f"{URL}{entry['id']}/").status_code == 204
    assert api.get(f"{URL}{entry['id']}/").status_code == 404
    assert list(UrlWhitelistEntry.objects.values_list("host", flat=True)) == ["203.0.113.7"]
    actions = list(AuditLog.objects.filter(tenant=tenant).order_by("id").values_list("action", flat=True))
    assert actions == ["whitelist.add", "whitelist.add", "whitelist.remove"]
    removal = AuditLog.objects.get(action="whitelist.remove")
    assert removal.before["host"] == "*.example.com" and removal.after is None
    assert removal.actor_type == "tenant" and removal.actor.startswith("tenant:acme")


def test_invalid_patterns_are_400_naming_the_field(api):
    response = api.post(URL, {"host": "a.*.example.com", "port": 0, "path_prefix": "x"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error["fields"]) >= {"host", "path_prefix"}
    assert api.post(URL, {"host": "ok.example", "colour": "red"}, format="json").status_code == 400
    assert api.post(URL, {"host": "ok.example", "scheme": "ftp"}, format="json").status_code == 400
    assert not UrlWhitelistEntry.objects.exists()


def test_a_repeated_entry_is_a_conflict(api):
    assert api.post(URL, {"host": "Example.com"}, format="json").status_code == 201
    again = api.post(URL, {"host": "example.com."}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "whitelist_duplicate"


def test_another_tenants_entries_are_invisible(api, other_api):
    entry = api.post(URL, {"host": "mine.example"}, format="json").json()
    assert other_api.get(URL).json()["results"] == []
    assert other_api.get(f"{URL}{entry['id']}/").status_code == 404
    assert other_api.delete(f"{URL}{entry['id']}/").status_code == 404
    assert api.get(f"{URL}{entry['id']}/").status_code == 200
    assert api.get(f"{URL}not-a-number/").status_code == 404


def test_a_tenants_key_cannot_widen_its_enforced_whitelist(api, enforcing):
    entry = enforcing.add("hooks.example.com")

    refused = api.post(URL, {"host": "*.org"}, format="json")

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "whitelist_enforced"
    assert list(UrlWhitelistEntry.objects.values_list("host", flat=True)) == ["hooks.example.com"]
    assert api.post(CALLBACKS, {"url": "https://anything.org/x"}, format="json").status_code == 400
    assert not AuditLog.objects.filter(action="whitelist.add", actor_type="tenant").exists()
    # Narrowing stays open to the tenant.
    assert api.delete(f"{URL}{entry.pk}/").status_code == 204


def test_a_key_given_the_whitelist_scope_may_widen_it(enforcing):
    from rest_framework.test import APIClient

    from callbacks.services.tenants import api_key_rotate

    scoped_key = api_key_rotate(tenant=enforcing, actor_type="user", actor="ops", manages_whitelist=True)
    scoped = APIClient()
    scoped.credentials(HTTP_AUTHORIZATION=f"Bearer {scoped_key}")

    assert scoped.post(URL, {"host": "hooks.example.org"}, format="json").status_code == 201
    assert scoped.post(CALLBACKS, {"url": "https://hooks.example.org/x"}, format="json").status_code == 201


def test_unauthenticated_is_401(client):
    assert client.get(URL).status_code == 401


def test_enforced_whitelist_refuses_other_urls_at_creation(api, enforcing):
    enforcing.add("hooks.example.com", scheme="https", path_prefix="/in")
    ok = api.post(CALLBACKS, {"url": "https://hooks.example.com/in/1"}, format="json")
    assert ok.status_code == 201

    refused = api.post(CALLBACKS, {"url": "https://other.example.com/in/1"}, format="json")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "whitelist_denied"
    assert list(error["fields"]) == ["url"]
    assert "other.example.com is not on the tenant's URL whitelist" in error["fields"]["url"][0]
    for outside in (
        "http://hooks.example.com/in/1",
        "https://hooks.example.com/out",
        "https://hooks.example.com:8443/in",
    ):
        assert api.post(CALLBACKS, {"url": outside}, format="json").status_code == 400, outside
    assert CallbackTask.objects.count() == 1


def test_an_empty_enforced_whitelist_refuses_everything(api, enforcing):
    response = api.post(CALLBACKS, {"url": "https://example.com/"}, format="json")
    assert response.status_code == 400
    assert "no enabled entries" in response.json()["error"]["fields"]["url"][0]


def test_a_disabled_entry_allows_nothing(api, enforcing):
    entry = enforcing.add("example.com")
    UrlWhitelistEntry.objects.filter(pk=entry.pk).update(enabled=False)
    assert api.post(CALLBACKS, {"url": "https://example.com/"}, format="json").status_code == 400


def test_without_enforcement_entries_do_not_restrict(api, tenant):
    api.post(URL, {"host": "only.example"}, format="json")
    assert api.post(CALLBACKS, {"url": "https://elsewhere.example/"}, format="json").status_code == 201


def test_batch_errors_are_reported_per_index_and_nothing_is_created(api, enforcing):
    enforcing.add("*.example.com")
    batch = {
        "callbacks": [
            {"url": "https://a.example.com/"},
            {"url": "https://example.com/"},
            {"url": "https://b.example.com/"},
            {"url": "https://evil.test/"},
        ]
    }
    response = api.post(f"{CALLBACKS}batch/", batch, format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields["callbacks"]) == {"1", "3"}
    assert "url" in fields["callbacks"]["3"]
    assert not CallbackTask.objects.exists()

    allowed = {"callbacks": [batch["callbacks"][0], batch["callbacks"][2]]}
    assert api.post(f"{CALLBACKS}batch/", allowed, format="json").status_code == 201
    assert CallbackTask.objects.count() == 2


def test_the_schema_documents_whitelist_and_audit(api):
    schema = api.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert set(paths["/api/v1/whitelist/"]) >= {"get", "post"}
    assert set(paths["/api/v1/whitelist/{entry_id}/"]) >= {"get", "delete"}
    assert "get" in paths["/api/v1/audit/"]
