"""manage.py whitelist add|remove|list|enforce."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from callbacks.models import AuditLog, UrlWhitelistEntry


def run(*args) -> str:
    out = io.StringIO()
    call_command("whitelist", *args, stdout=out)
    return out.getvalue()


def test_add_list_enforce_remove(tenant):
    added = run("add", "--tenant", "acme", "*.Example.com", "--scheme", "https", "--note", "billing")
    assert "added entry" in added and "https://*.example.com" in added
    assert "does not enforce" in added
    run("add", "--tenant", "acme", "203.0.113.7", "--port", "8443", "--path-prefix", "/hooks")
    assert "whitelist enforcement on" in run("enforce", "--tenant", "acme", "on")

    listing = run("list", "--tenant", "acme")
    assert "whitelist enforced, 2 entries" in listing and "# billing" in listing
    document = json.loads(run("list", "--tenant", "acme", "--json"))
    assert document["enforced"] is True
    assert [entry["host"] for entry in document["entries"]] == ["*.example.com", "203.0.113.7"]

    entry_id = document["entries"][0]["id"]
    assert f"removed entry {entry_id}" in run("remove", "--tenant", "acme", str(entry_id))
    assert list(UrlWhitelistEntry.objects.values_list("host", flat=True)) == ["203.0.113.7"]
    run("enforce", "--tenant", "acme", "off")
    tenant.refresh_from_db()
    assert tenant.enforce_whitelist is False
    assert list(
        AuditLog.objects.filter(actor="manage.py").order_by("id").values_list("action", flat=True)
    ) == [
        "whitelist.add",
        "whitelist.add",
        "tenant.update_policy",
        "whitelist.remove",
        "tenant.update_policy",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "--tenant", "nobody", "example.com"], "no tenant named 'nobody'"),
        (["add", "--tenant", "acme", "a.*.example.com"], "host: a wildcard is only allowed"),
        (["add", "--tenant", "acme", "example.com", "--port", "0"], "port: must be a whole number"),
        (
            ["add", "--tenant", "acme", "example.com", "--path-prefix", "hooks"],
            "path_prefix: must start with /",
        ),
        (["remove", "--tenant", "acme", "999999"], "acme has no whitelist entry 999999"),
    ],
)
def test_clear_errors(tenant, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not UrlWhitelistEntry.objects.exists()


def test_a_duplicate_is_refused(tenant):
    run("add", "--tenant", "acme", "example.com")
    with pytest.raises(CommandError, match="has this entry already"):
        run("add", "--tenant", "acme", "EXAMPLE.com.")


def test_another_tenants_entry_cannot_be_removed(tenant, other_api):
    run("add", "--tenant", "globex", "theirs.example")
    entry = UrlWhitelistEntry.objects.get()
    with pytest.raises(CommandError, match="acme has no whitelist entry"):
        run("remove", "--tenant", "acme", str(entry.pk))
    assert UrlWhitelistEntry.objects.count() == 1
