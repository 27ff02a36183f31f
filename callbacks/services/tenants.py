import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from callbacks import bulk, keys, masking, wakeup
from callbacks.domain.policy import POLICY_FIELDS, check_policy_order, clean_policy
from callbacks.domain.vocabulary import ActorType, TaskStatus
from callbacks.models import CallbackTask, Lane, TaskEvent, Tenant, TenantApiKey
from callbacks.services.audit import audit_record


@dataclass(frozen=True)
class NewTenant:
    tenant: Tenant
    api_key: str  # shown once; only its digest is stored
    signing_secret: str


@transaction.atomic
def tenant_create(*, name: str, enforce_whitelist: bool = False) -> NewTenant:
    tenant = Tenant(name=name, signing_secret=keys.new_signing_secret(), enforce_whitelist=enforce_whitelist)
    tenant.full_clean()
    tenant.save()
    key = api_key_create(tenant=tenant)
    return NewTenant(tenant=tenant, api_key=key, signing_secret=tenant.signing_secret)


def api_key_create(*, tenant: Tenant, manages_whitelist: bool = False) -> str:
    key = keys.new_api_key()
    TenantApiKey.objects.create(
        tenant=tenant,
        prefix=key[:10],
        digest=keys.api_key_digest(key),
        manages_whitelist=manages_whitelist,
    )
    return key


def api_key_revoke(*, api_key: TenantApiKey, actor_type: str = ActorType.SYSTEM, actor: str = "") -> None:
    """Revoke a key (it stops working on the next request); revoking a revoked key changes nothing."""
    with transaction.atomic():
        now = timezone.now()
        revoked = TenantApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now)
        if revoked:
            audit_record(
                actor_type=actor_type,
                actor=actor or actor_type,
                tenant=api_key.tenant,
                action="api_key.revoke",
                obj=api_key,
                before={"prefix": api_key.prefix, "revoked_at": None},
                after={"prefix": api_key.prefix, "revoked_at": now.isoformat()},
            )


# --- rotation -------------------------------------------------------------------------------------
# Audit rows name secrets by a fingerprint only: enough to tell which one is current, useless to an attacker.


def secret_fingerprint(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12] if secret else ""


def _signing_state(tenant: Tenant) -> dict:
    return {
        "current": secret_fingerprint(tenant.signing_secret),
        "previous": secret_fingerprint(tenant.previous_signing_secret),
    }


@transaction.atomic
def signing_secret_rotate(*, tenant: Tenant, actor_type: str, actor: str) -> str:
    """A new signing secret becomes current and the current one previous; callbacks carry both signatures
    until signing_secret_retire_previous, so receivers switch without downtime. Returns the new secret
    (shown once). A secret that was already previous is dropped: at most two sign at once."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    before = _signing_state(tenant)
    new_secret = keys.new_signing_secret()
    tenant.previous_signing_secret = tenant.signing_secret
    tenant.signing_secret = new_secret
    tenant.save(update_fields=["signing_secret", "previous_signing_secret"])
    audit_record(
        actor_type=actor_type,
        actor=actor,
        tenant=tenant,
        action="signing_secret.rotate",
        obj=tenant,
        before=before,
        after=_signing_state(tenant),
    )
    return new_secret


@transaction.atomic
def signing_secret_retire_previous(*, tenant: Tenant, actor_type: str, actor: str) -> bool:
    """Stop signing with the previous secret (once every receiver has the new one). False if there was none."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if not tenant.previous_signing_secret:
        return False
    before = _signing_state(tenant)
    tenant.previous_signing_secret = ""
    tenant.save(update_fields=["previous_signing_secret"])
    audit_record(
        actor_type=actor_type,
        actor=actor,
        tenant=tenant,
        action="signing_secret.retire_previous",
        obj=tenant,
        before=before,
        after=_signing_state(tenant),
    )
    return True


@transaction.atomic
def api_key_rotate(
    *,
    tenant: Tenant,
    actor_type: str,
    actor: str,
    revoke_others: bool = False,
    manages_whitelist: bool = False,
) -> str:
    """A new API key for the tenant (returned once). The old keys keep working until revoked, so callers
    switch without downtime; revoke_others=True revokes every other active key at once.
    manages_whitelist: the new key may widen the tenant's enforced whitelist (an operator's grant)."""
    key = api_key_create(tenant=tenant, manages_whitelist=manages_whitelist)
    new_key = TenantApiKey.objects.get(digest=keys.api_key_digest(key))
    audit_record(
        actor_type=actor_type,
        actor=actor,
        tenant=tenant,
        action="api_key.rotate",
        obj=new_key,
        before=None,
        after={
            "prefix": new_key.prefix,
            "revoke_others": revoke_others,
            "manages_whitelist": manages_whitelist,
        },
    )
    if revoke_others:
        others = TenantApiKey.objects.filter(tenant=tenant, revoked_at__isnull=True).exclude(pk=new_key.pk)
        for old in others:
            api_key_revoke(api_key=old, actor_type=actor_type, actor=actor)
    return key


# --- deactivation: the tenant's keys stop working and its callbacks wait, none is lost -------------


@transaction.atomic
def tenant_deactivate(*, tenant: Tenant, actor_type: str, actor: str) -> Tenant:
    """Deactivate the tenant: its API keys answer 401 from the next request, and its callbacks are held
    where they are (the claim passes over an inactive tenant's tasks), to go when it is reactivated.
    Its callbacks handed to a worker but not started are taken back, due again and so held too; an
    attempt already in flight finishes and is recorded. Deactivating an inactive tenant changes nothing."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if not tenant.is_active:
        return tenant
    tenant.is_active = False
    tenant.save(update_fields=["is_active"])
    # Its lanes end, so no worker takes another of its tasks; those a worker holds but has not started
    # come back (a worker starts a task only while it is queued under its claim token).
    Lane.objects.filter(tenant=tenant).delete()
    now = timezone.now()
    taken_back = list(
        CallbackTask.objects.select_for_update()
        .filter(tenant=tenant, status=TaskStatus.QUEUED)
        .values_list("id", flat=True)
    )
    CallbackTask.objects.filter(id__in=taken_back).update(
        status=TaskStatus.SCHEDULED, locked_by="", locked_until=None, next_attempt_at=now, updated_at=now
    )
    bulk.insert_rows(
        TaskEvent,
        ("task_id", "at", "from_status", "to_status", "note"),
        [
            (task_id, now, TaskStatus.QUEUED, TaskStatus.SCHEDULED, "held: tenant deactivated")
            for task_id in taken_back
        ],
    )
    _audit_activity(tenant, actor_type=actor_type, actor=actor, action="tenant.deactivate")
    return tenant


@transaction.atomic
def tenant_reactivate(*, tenant: Tenant, actor_type: str, actor: str) -> Tenant:
    """Reactivate the tenant: its unrevoked keys work again and its held callbacks go (those held past
    their due time at once). Reactivating an active tenant changes nothing."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.is_active:
        return tenant
    tenant.is_active = True
    tenant.save(update_fields=["is_active"])
    _audit_activity(tenant, actor_type=actor_type, actor=actor, action="tenant.reactivate")
    transaction.on_commit(wakeup.notify_dispatcher)
    return tenant


def _audit_activity(tenant: Tenant, *, actor_type: str, actor: str, action: str) -> None:
    audit_record(
        actor_type=actor_type,
        actor=actor,
        tenant=tenant,
        action=action,
        obj=tenant,
        before={"is_active": not tenant.is_active},
        after={"is_active": tenant.is_active},
    )


# --- policy (defaults for the tenant's tasks and protection settings) ------------------------------


@transaction.atomic
def tenant_update_policy(*, tenant: Tenant, data: dict, actor_type: str, actor: str) -> Tenant:
    """Change some of the tenant's policy fields (POLICY_FIELDS); audited with the fields' values before and
    after. Unknown or invalid fields: ApplicationError naming each. Only changed values are written."""
    cleaned = clean_policy(data)
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    changed = {name: value for name, value in cleaned.items() if getattr(tenant, name) != value}
    if not changed:
        return tenant
    before = {name: getattr(tenant, name) for name in changed}
    for name, value in changed.items():
        setattr(tenant, name, value)
    check_policy_order({name: getattr(tenant, name) for name in POLICY_FIELDS})
    tenant.save(update_fields=list(changed))
    audit_record(
        actor_type=actor_type,
        actor=actor,
        tenant=tenant,
        action="tenant.update_policy",
        obj=tenant,
        before=masking.mask_data(before),
        after=masking.mask_data(changed),
    )
    return tenant
