"""The audit log: every state change writes who, what, when, before and after, without secrets; the
tenant reads its own through GET /api/v1/audit/, newest first."""

import pytest

from callbacks.errors import ApplicationError
from callbacks.models import AuditLog
from callbacks.services.audit import audit_record
from callbacks.services.tenants import tenant_update_policy
from callbacks.services.whitelist import (
    whitelist_enforce_set,
    whitelist_entry_create,
    whitelist_entry_delete,
    whitelist_entry_update,
)

AUDIT = "/api/v1/audit/"


def test_policy_changes_are_validated_and_audited(tenant):
    tenant_update_policy(
        tenant=tenant,
        data={
            "max_retries": 7,
            "success_statuses": [200, 202],
            "api_rate_limit": "10/s",
            "breaker_open_seconds": 30,
        },
        actor_type="user",
        actor="ops",
    )
    tenant.refresh_from_db()
    assert (tenant.max_retries, tenant.success_statuses, tenant.api_rate_limit) == (7, "200,202", "10/s")
    row = AuditLog.objects.get(action="tenant.update_policy")
    assert row.before == {
        "max_retries": None,
        "success_statuses": "",
        "api_rate_limit": "",
        "breaker_open_seconds": None,
    }
    assert row.after["max_retries"] == 7 and row.after["success_statuses"] == "200,202"
    assert (row.actor_type, row.actor, row.tenant, row.object_type) == ("user", "ops", tenant, "tenant")

    # Nothing changed: nothing written.
    tenant_update_policy(tenant=tenant, data={"max_retries": 7}, actor_type="user", actor="ops")
    assert AuditLog.objects.filter(action="tenant.update_policy").count() == 1
    # Back to the installation's default.
    tenant_update_policy(tenant=tenant, data={"max_retries": None}, actor_type="user", actor="ops")
    tenant.refresh_from_db()
    assert tenant.max_retries is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"max_retries": 21}, "max_retries"),
        ({"max_retries": "3.5"}, "max_retries"),
        ({"backoff_multiplier": 0.5}, "backoff_multiplier"),
        ({"success_statuses": "700"}, "success_statuses"),
        ({"api_rate_limit": "lots"}, "api_rate_limit"),
        ({"enforce_whitelist": "yes"}, "enforce_whitelist"),
        ({"notification_url": "ftp://x.example/"}, "notification_url"),
        ({"notification_url": "http://10.0.0.1/"}, "notification_url"),
        ({"signing_secret": "whsec_x"}, "signing_secret"),
        ({"connect_timeout_seconds": 20, "total_timeout_seconds": 10}, "total_timeout_seconds"),
    ],
)
def test_bad_policy_values_name_the_field_and_change_nothing(tenant, data, field):
    with pytest.raises(ApplicationError) as caught:
        tenant_update_policy(tenant=tenant, data=data, actor_type="user", actor="ops")
    assert field in caught.value.fields
    tenant.refresh_from_db()
    assert tenant.max_retries is None and tenant.total_timeout_seconds is None
    assert not AuditLog.objects.exists()


def test_secrets_in_policy_values_are_masked_in_the_audit(tenant):
    url = "https://hooks.example.com/notify?token=SECRETTOKEN"
    tenant_update_policy(tenant=tenant, data={"notification_url": url}, actor_type="user", actor="ops")
    tenant.refresh_from_db()
    assert tenant.notification_url == url  # kept as given, it must be sent
    row = AuditLog.objects.get()
    assert (
        "SECRETTOKEN" not in str(row.after)
        and "hooks.example.com/notify?token=" in row.after["notification_url"]
    )


def test_whitelist_changes_are_audited_with_before_and_after(tenant):
    entry = whitelist_entry_create(tenant=tenant, host="a.example", actor_type="user", actor="ops")
    whitelist_entry_update(entry=entry, data={"enabled": False, "port": 8443}, actor_type="user", actor="ops")
    whitelist_enforce_set(tenant=tenant, enforce=True, actor_type="user", actor="ops")
    entry.refresh_from_db()
    whitelist_entry_delete(entry=entry, actor_type="user", actor="ops")
    rows = list(AuditLog.objects.order_by("id"))
    assert [row.action for row in rows] == [
        "whitelist.add",
        "whitelist.update",
        "tenant.update_policy",
        "whitelist.remove",
    ]
    update = rows[1]
    assert update.before["enabled"] is True and update.after["enabled"] is False
    assert update.before["port"] is None and update.after["port"] == 8443
    assert rows[2].before == {"enforce_whitelist": False} and rows[2].after == {"enforce_whitelist": True}
    assert rows[3].before["port"] == 8443 and rows[3].after is None


def test_the_api_shows_the_tenants_own_log_newest_first(api, tenant, other_api):
    created = api.post("/api/v1/callbacks/", {"url": "https://example.com/"}, format="json").json()
    api.post(f"/api/v1/callbacks/{created['id']}/cancel/")
    api.post("/api/v1/whitelist/", {"host": "example.com"}, format="json")
    other_api.post("/api/v1/whitelist/", {"host": "theirs.example"}, format="json")

    page = api.get(AUDIT).json()
    actions = [row["action"] for row in page["results"]]
    assert actions == ["whitelist.add", "task.cancel", "task.create"]
    cancel = page["results"][1]
    assert cancel["object_type"] == "callbacktask" and cancel["object_id"] == created["id"]
    assert cancel["before"]["status"] == "scheduled" and cancel["after"]["status"] == "cancelled"
    assert cancel["actor_type"] == "tenant" and cancel["actor"].startswith("tenant:acme key:tc_")
    assert set(cancel) == {
        "id",
        "at",
        "actor_type",
        "actor",
        "action",
        "object_type",
        "object_id",
        "before",
        "after",
    }

    assert [row["action"] for row in api.get(AUDIT, {"action": "task.cancel"}).json()["results"]] == [
        "task.cancel"
    ]
    assert api.get(AUDIT, {"object_id": created["id"]}).json()["results"][0]["action"] == "task.cancel"
    theirs = other_api.get(AUDIT).json()["results"]
    assert [row["action"] for row in theirs] == ["whitelist.add"]


def test_the_audit_api_pages(api, tenant):
    for n in range(5):
        audit_record(
            actor_type="system",
            actor="test",
            tenant=tenant,
            action=f"test.{n}",
            obj=tenant,
            before=None,
            after=None,
        )
    first = api.get(AUDIT, {"page_size": 2}).json()
    assert [row["action"] for row in first["results"]] == ["test.4", "test.3"]
    second = api.get(first["next"]).json()
    assert [row["action"] for row in second["results"]] == ["test.2", "test.1"]


def test_the_audit_api_is_read_only(api):
    assert api.post(AUDIT, {}, format="json").status_code == 405
    assert api.delete(AUDIT).status_code == 405


def test_no_audit_row_keeps_a_secret_whoever_writes_it(tenant):
    state = {
        "task_template": {
            "url": "https://h.example/in?token=SECRETQ",
            "headers": {"Authorization": "Bearer SECRETB", "X-Trace": "t-1"},
        },
        "signing_secret": "whsec_SECRETW",
        "note": "key tc_SECRETKEYSECRETKEY used",
    }
    audit_record(
        actor_type="system",
        actor="test",
        tenant=tenant,
        action="x.change",
        obj=tenant,
        before=state,
        after=None,
    )
    row = AuditLog.objects.get()
    for secret in ("SECRETQ", "SECRETB", "SECRETW", "SECRETKEY"):
        assert secret not in str(row.before), secret
    assert row.before["task_template"]["headers"]["X-Trace"] == "t-1"
