import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from callbacks import keys, masking
from callbacks.domain.policy import POLICY_FIELDS, check_policy_order, clean_policy
from callbacks.domain.vocabulary import ActorType
from callbacks.models import Tenant, TenantApiKey
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


def api_key_create(*, tenant: Tenant) -> str:
    key = keys.new_api_key()
    TenantApiKey.objects.create(tenant=tenant, prefix=key[:10], digest=keys.api_key_digest(key))
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
def api_key_rotate(*, tenant: Tenant, actor_type: str, actor: str, revoke_others: bool = False) -> str:
    """A new API key for the tenant (returned once). The old keys keep working until revoked, so callers
    switch without downtime; revoke_others=True revokes every other active key at once."""
    key = api_key_create(tenant=tenant)
    new_key = TenantApiKey.objects.get(digest=keys.api_key_digest(key))
    audit_record(
        actor_type=actor_type,
        actor=actor,
        tenant=tenant,
        action="api_key.rotate",
        obj=new_key,
        before=None,
        after={"prefix": new_key.prefix, "revoke_others": revoke_others},
    )
    if revoke_others:
        others = TenantApiKey.objects.filter(tenant=tenant, revoked_at__isnull=True).exclude(pk=new_key.pk)
        for old in others:
            api_key_revoke(api_key=old, actor_type=actor_type, actor=actor)
    return key


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
