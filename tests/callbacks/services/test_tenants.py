"""Signing secret and API key rotation: receivers and callers switch without downtime,
checked with the independent standardwebhooks implementation against really delivered callbacks."""

import io
import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from callbacks import keys
from callbacks.delivery import outcomes
from callbacks.delivery.executor import send_attempt
from callbacks.models import AuditLog, Tenant, TenantApiKey
from callbacks.sealing import SEALED_PREFIX
from callbacks.services.tenants import (
    api_key_revoke,
    api_key_rotate,
    secret_fingerprint,
    signing_key_rotate,
    signing_scheme_set,
    signing_secret_retire_previous,
    signing_secret_rotate,
    tenant_create,
)
from tests.factories import make_task
from tests.leaks import private_texts


def deliver(tenant, receiver, body='{"order":42}'):
    tenant.refresh_from_db()
    before = len(receiver.received)
    send_attempt(make_task(tenant=tenant, url=receiver.url, payload=body), attempt=1)
    return receiver.wait_for(before + 1)[-1]


def test_during_rotation_old_and_new_receivers_both_verify(tenant, receiver):
    old = tenant.signing_secret
    new = signing_secret_rotate(tenant=tenant, actor_type="user", actor="ops")
    assert new != old and new.startswith("whsec_")

    got = deliver(tenant, receiver)
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(got.body, got.headers) == {"order": 42}  # a receiver not yet switched
    assert Webhook(new).verify(got.body, got.headers) == {"order": 42}  # one already switched

    assert signing_secret_retire_previous(tenant=tenant, actor_type="user", actor="ops") is True
    got = deliver(tenant, receiver)
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    assert Webhook(new).verify(got.body, got.headers) == {"order": 42}
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(got.body, got.headers)
    assert signing_secret_retire_previous(tenant=tenant, actor_type="user", actor="ops") is False


def test_a_second_rotation_drops_the_oldest_secret(tenant, receiver):
    first = tenant.signing_secret
    second = signing_secret_rotate(tenant=tenant, actor_type="user", actor="ops")
    third = signing_secret_rotate(tenant=tenant, actor_type="user", actor="ops")
    got = deliver(tenant, receiver)
    assert Webhook(second).verify(got.body, got.headers) == {"order": 42}
    assert Webhook(third).verify(got.body, got.headers) == {"order": 42}
    with pytest.raises(WebhookVerificationError):
        Webhook(first).verify(got.body, got.headers)


def test_rotation_is_audited_without_the_secrets(tenant):
    old = tenant.signing_secret
    new = signing_secret_rotate(tenant=tenant, actor_type="user", actor="ops")
    row = AuditLog.objects.get(action="signing_secret.rotate")
    assert row.actor_type == "user" and row.actor == "ops" and row.tenant == tenant
    assert row.before == {
        "scheme": "v1",
        "current": secret_fingerprint(old),
        "previous": "",
        "previous_until": None,
    }
    tenant.refresh_from_db()
    assert row.after == {
        "scheme": "v1",
        "current": secret_fingerprint(new),
        "previous": secret_fingerprint(old),
        "previous_until": tenant.previous_signing_secret_until.isoformat(),
    }
    text = str(row.before) + str(row.after)
    assert old not in text and new not in text and old[6:20] not in text


def test_rotate_secret_command(tenant, receiver):
    out = io.StringIO()
    call_command("rotate_secret", tenant.name, stdout=out)
    new = out.getvalue().split("new signing secret: ")[1].split()[0]
    got = deliver(tenant, receiver)
    assert Webhook(new).verify(got.body, got.headers) == {"order": 42}

    out = io.StringIO()
    call_command("rotate_secret", tenant.name, "--retire-previous", stdout=out)
    assert "current secret only" in out.getvalue()
    tenant.refresh_from_db()
    assert tenant.signing_secret == new and tenant.previous_signing_secret == ""
    with pytest.raises(CommandError, match="no previous signing secret"):
        call_command("rotate_secret", tenant.name, "--retire-previous")
    with pytest.raises(CommandError, match="no tenant named 'nobody'"):
        call_command("rotate_secret", "nobody")
    assert list(AuditLog.objects.filter(actor="manage.py").values_list("action", flat=True)) == [
        "signing_secret.rotate",
        "signing_secret.retire_previous",
    ]


def test_a_rotated_api_key_works_alongside_the_old_one_until_revoked(api, new_tenant):
    tenant = new_tenant.tenant
    key = api_key_rotate(tenant=tenant, actor_type="user", actor="ops")
    assert key.startswith(keys.API_KEY_PREFIX) and key != new_tenant.api_key
    fresh = api.__class__()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert fresh.get("/api/v1/callbacks/").status_code == 200
    assert api.get("/api/v1/callbacks/").status_code == 200  # the old key still works

    old = TenantApiKey.objects.get(digest=keys.api_key_digest(new_tenant.api_key))
    api_key_revoke(api_key=old, actor_type="user", actor="ops")
    assert api.get("/api/v1/callbacks/").status_code == 401
    assert fresh.get("/api/v1/callbacks/").status_code == 200

    rotate, revoke = AuditLog.objects.filter(tenant=tenant).order_by("id")
    assert rotate.action == "api_key.rotate" and rotate.after["prefix"] == key[:10]
    assert revoke.action == "api_key.revoke" and revoke.before["revoked_at"] is None
    assert revoke.after["revoked_at"] is not None
    assert key not in str(rotate.after) and new_tenant.api_key not in str(revoke.before)


def test_rotate_api_key_command_with_revoke_old(api, new_tenant):
    tenant = new_tenant.tenant
    api_key_rotate(tenant=tenant, actor_type="user", actor="ops")  # a second old key
    out = io.StringIO()
    call_command("rotate_api_key", tenant.name, "--revoke-old", stdout=out)
    key = out.getvalue().split("new API key: ")[1].split()[0]
    assert api.get("/api/v1/callbacks/").status_code == 401
    assert TenantApiKey.objects.filter(tenant=tenant, revoked_at__isnull=True).count() == 1
    fresh = api.__class__()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert fresh.get("/api/v1/callbacks/").status_code == 200
    assert AuditLog.objects.filter(tenant=tenant, action="api_key.revoke", actor="manage.py").count() == 2
    with pytest.raises(CommandError, match="no tenant named"):
        call_command("rotate_api_key", "nobody")


# --- deactivation -----------------------------------------------------------------------------------


def _claimed_ids():
    from callbacks.delivery.claim import leases

    return {task_id for claim in leases.claim_due(limit=100) for task_id in claim.task_ids}


def test_a_deactivated_tenant_is_refused_and_its_callbacks_held_until_reactivated(api, new_tenant, other_api):
    from callbacks.delivery.claim import leases
    from callbacks.models import CallbackTask, Lane, TaskStatus
    from callbacks.services.tenants import tenant_deactivate, tenant_reactivate
    from monitoring import health

    tenant = new_tenant.tenant
    url = "http://127.0.0.1:9/hook"
    handed_out = make_task(tenant=tenant, url=url, priority=9)
    (claim,) = leases.claim_due(limit=1)  # a worker holds it, not started yet
    waiting = make_task(tenant=tenant, url=url, priority=9)

    tenant_deactivate(tenant=tenant, actor_type="user", actor="ops")

    assert api.get("/api/v1/callbacks/").status_code == 401
    assert not Lane.objects.filter(tenant=tenant).exists()
    # The worker holding the handed-out task finds it no longer queued under its claim: it is not sent.
    assert leases.start_claimed(token=claim.token, task_ids=claim.task_ids) == []
    statuses = dict(CallbackTask.objects.filter(tenant=tenant).values_list("id", "status"))
    assert statuses == {handed_out.id: TaskStatus.SCHEDULED, waiting.id: TaskStatus.SCHEDULED}
    assert health.oldest_due_lag_seconds() is None  # held on purpose: not a stall
    theirs = make_task(tenant=other_api.tenant, url=url)
    assert _claimed_ids() == {theirs.id}

    tenant_reactivate(tenant=tenant, actor_type="user", actor="ops")

    assert api.get("/api/v1/callbacks/").status_code == 200
    assert _claimed_ids() == {handed_out.id, waiting.id}
    actions = list(AuditLog.objects.filter(tenant=tenant).order_by("id").values_list("action", "after"))
    assert actions == [
        ("tenant.deactivate", {"is_active": False}),
        ("tenant.reactivate", {"is_active": True}),
    ]


def test_deactivate_and_reactivate_commands(api, new_tenant):
    tenant = new_tenant.tenant
    out = io.StringIO()
    call_command("tenant", "deactivate", tenant.name, stdout=out)
    assert "inactive" in out.getvalue()
    assert api.get("/api/v1/callbacks/").status_code == 401
    call_command("tenant", "deactivate", tenant.name, stdout=io.StringIO())  # again: no change
    call_command("tenant", "reactivate", tenant.name, stdout=io.StringIO())
    assert api.get("/api/v1/callbacks/").status_code == 200
    assert AuditLog.objects.filter(tenant=tenant, actor="manage.py").count() == 2
    with pytest.raises(CommandError, match="no tenant named"):
        call_command("tenant", "deactivate", "nobody")


def test_revoke_api_key_command(api, new_tenant):
    tenant = new_tenant.tenant
    call_command("revoke_api_key", tenant.name, new_tenant.api_key[:10], stdout=io.StringIO())
    assert api.get("/api/v1/callbacks/").status_code == 401
    assert AuditLog.objects.get(tenant=tenant, action="api_key.revoke").actor == "manage.py"
    with pytest.raises(CommandError, match="no active key"):
        call_command("revoke_api_key", tenant.name, new_tenant.api_key[:10])


def test_rotate_api_key_command_gives_the_whitelist_scope(new_tenant):
    out = io.StringIO()
    call_command("rotate_api_key", new_tenant.tenant.name, "--manages-whitelist", stdout=out)
    key = out.getvalue().split("new API key: ")[1].split()[0]
    assert TenantApiKey.objects.get(digest=keys.api_key_digest(key)).manages_whitelist
    assert not TenantApiKey.objects.get(digest=keys.api_key_digest(new_tenant.api_key)).manages_whitelist


# --- the v1a private key: sealed in its columns, never in a log ------------------------------------


@pytest.mark.django_db
def test_private_keys_are_sealed_in_their_columns_and_absent_from_the_logs(caplog, receiver, settings):
    settings.CALLBACKS_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    connection.force_debug_cursor = True  # every statement and its parameters are logged too
    try:
        with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="django.db.backends"):
            tenant = tenant_create(name="initech").tenant
            first = tenant.signing_private_key
            signing_scheme_set(tenant=tenant, scheme="v1a", actor_type="user", actor="ops")
            signing_key_rotate(tenant=tenant, scheme="v1a", actor_type="user", actor="ops")
            tenant.refresh_from_db()
            second = tenant.signing_private_key
            task = make_task(tenant=tenant, url=receiver.url, payload="{}")
            result = send_attempt(task, attempt=1)
            outcomes.record([outcomes.Finished(task=task, token="", result=result)])
    finally:
        connection.force_debug_cursor = False

    assert first.startswith("whsk_") and second.startswith("whsk_") and first != second
    assert tenant.previous_signing_private_key == first
    assert receiver.wait_for(1)[0].headers["webhook-signature"].count("v1a,") == 2
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert "UPDATE" in logged  # the statements were logged
    assert not any(part in logged for part in private_texts(first, second))
    with connection.cursor() as cursor:  # the columns as stored, past the fields that open them
        cursor.execute(
            f"SELECT signing_private_key, previous_signing_private_key, t.* FROM {Tenant._meta.db_table} t "
            "WHERE id = %s",
            [Tenant._meta.pk.get_db_prep_value(tenant.pk, connection)],
        )
        row = cursor.fetchone()
        cursor.execute(f"SELECT a.* FROM {AuditLog._meta.db_table} a")
        audit = cursor.fetchall()
    assert row[0].startswith(SEALED_PREFIX) and row[1].startswith(SEALED_PREFIX)
    stored = str(row) + str(audit)
    assert not any(part in stored for part in private_texts(first, second))


def test_rotate_secret_command_rotates_the_v1a_key_with_an_overlap(tenant):
    old_public = keys.public_key_of(tenant.signing_private_key)
    out = io.StringIO()

    call_command("rotate_secret", tenant.name, "--scheme", "v1a", "--overlap", "120", stdout=out)

    tenant.refresh_from_db()
    new_public = out.getvalue().split("new public key: ")[1].split()[0]
    assert new_public == keys.public_key_of(tenant.signing_private_key) != old_public
    assert keys.public_key_of(tenant.previous_signing_private_key) == old_public
    assert 100 < (tenant.previous_signing_key_until - timezone.now()).total_seconds() <= 120
    assert not any(part in out.getvalue() for part in private_texts(tenant.signing_private_key))
    call_command("rotate_secret", tenant.name, "--scheme", "v1a", "--retire-previous", stdout=io.StringIO())
    tenant.refresh_from_db()
    assert (
        tenant.previous_signing_private_key == "" and tenant.signing_scheme == "v1"
    )  # the scheme is unchanged
    with pytest.raises(CommandError, match="overlap"):
        call_command("rotate_secret", tenant.name, "--scheme", "v1a", "--overlap", "-5")


@pytest.mark.django_db
def test_create_tenant_prints_the_v1a_public_key_not_the_private_key():
    out = io.StringIO()
    call_command("create_tenant", "initech", stdout=out)

    tenant = Tenant.objects.get(name="initech")
    assert f"v1a public key:  {keys.public_key_of(tenant.signing_private_key)}" in out.getvalue()
    assert not any(part in out.getvalue() for part in private_texts(tenant.signing_private_key))
