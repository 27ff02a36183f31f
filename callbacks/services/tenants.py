import hashlib
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from callbacks import bulk, keys, masking, wakeup
from callbacks.domain.bounds import DEFAULT_SIGNING_OVERLAP_SECONDS, SIGNING_OVERLAP_SECONDS
from callbacks.domain.policy import POLICY_FIELDS, check_policy_order, clean_policy
from callbacks.domain.vocabulary import ActorType, SigningScheme, TaskStatus
from callbacks.errors import ApplicationError
from callbacks.models import CallbackTask, Lane, TaskEvent, Tenant, TenantApiKey
from callbacks.services.audit import audit_record


@dataclass(frozen=True)
class NewTenant:
    tenant: Tenant
    api_key: str  # shown once; only its digest is stored
    signing_secret: str


@transaction.atomic
def tenant_create(*, name: str, enforce_whitelist: bool = False) -> NewTenant:
    tenant = Tenant(
        name=name,
        signing_secret=keys.new_signing_secret(),
        signing_private_key=keys.new_signing_private_key(),
        enforce_whitelist=enforce_whitelist,
    )
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


# --- signing keys: the scheme, rotation ------------------------------------------------------------
# Audit rows name keys by a fingerprint only: enough to tell which one is current, useless to an attacker.
# v1 secrets and v1a keys rotate alike: the new one becomes current, the current one previous, and the
# previous one keeps signing beside it for the overlap the rotation is given, then stops by itself.


def secret_fingerprint(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12] if secret else ""


def _signing_state(tenant: Tenant, scheme: str) -> dict:
    fields = keys.SCHEME_FIELDS[scheme]
    until = getattr(tenant, fields.previous_until)
    return {
        "scheme": scheme,
        "current": secret_fingerprint(getattr(tenant, fields.current)),
        "previous": secret_fingerprint(getattr(tenant, fields.previous)),
        "previous_until": until.isoformat() if until else None,
    }


def _clean_scheme(scheme: str) -> str:
    if scheme not in SigningScheme.values:
        raise ApplicationError(
            "invalid signing scheme",
            code="invalid",
            fields={"scheme": [f"must be one of {', '.join(SigningScheme.values)}"]},
        )
    return scheme


def _clean_overlap(overlap_seconds) -> int:
    try:
        return SIGNING_OVERLAP_SECONDS.clean(overlap_seconds)
    except ValueError as exc:
        raise ApplicationError(
            "invalid overlap", code="invalid", fields={"overlap_seconds": [str(exc)]}
        ) from None


@transaction.atomic
def signing_key_rotate(
    *,
    tenant: Tenant,
    actor_type: str,
    actor: str,
    scheme: str = SigningScheme.V1,
    overlap_seconds: int = DEFAULT_SIGNING_OVERLAP_SECONDS,
) -> str:
    """A new key of `scheme` becomes current and the current one previous; callbacks carry both
    signatures for `overlap_seconds` (or until signing_key_retire_previous), so receivers switch without
    downtime. Returns what the tenant is given: the new v1 secret (shown once), or the new v1a public
    key. A key that was already previous is dropped: at most two sign at once."""
    scheme = _clean_scheme(scheme)
    overlap = _clean_overlap(overlap_seconds)
    fields = keys.SCHEME_FIELDS[scheme]
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    before = _signing_state(tenant, scheme)
    new_key = fields.new()
    # No overlap: the current key stops signing at once, and is not kept.
    setattr(tenant, fields.previous, getattr(tenant, fields.current) if overlap else "")
    setattr(tenant, fields.previous_until, timezone.now() + timedelta(seconds=overlap) if overlap else None)
    setattr(tenant, fields.current, new_key)
    tenant.save(update_fields=[fields.current, fields.previous, fields.previous_until])
    audit_record(
        actor_type=actor_type,
        actor=actor,
        tenant=tenant,
        action=f"{_AUDIT_ENTITY[scheme]}.rotate",
        obj=tenant,
        before=before,
        after=_signing_state(tenant, scheme),
    )
    return keys.public_key_of(new_key) if scheme == SigningScheme.V1A else new_key


def signing_secret_rotate(
    *, tenant: Tenant, actor_type: str, actor: str, overlap_seconds: int = DEFAULT_SIGNING_OVERLAP_SECONDS
) -> str:
    """signing_key_rotate for the v1 secret; returns the new secret (shown once)."""
    return signing_key_rotate(
        tenant=tenant,
        actor_type=actor_type,
        actor=actor,
        scheme=SigningScheme.V1,
        overlap_seconds=overlap_seconds,
    )


@transaction.atomic
def signing_key_retire_previous(
    *, tenant: Tenant, actor_type: str, actor: str, scheme: str = SigningScheme.V1
) -> bool:
    """Stop signing with the previous key of `scheme` now, before its overlap ends (once every receiver
    has the new one). False if none was signing."""
    scheme = _clean_scheme(scheme)
    fields = keys.SCHEME_FIELDS[scheme]
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if not keys.previous_signs(tenant, scheme, timezone.now()):
        return False
    before = _signing_state(tenant, scheme)
    setattr(tenant, fields.previous, "")
    setattr(tenant, fields.previous_until, None)
    tenant.save(update_fields=[fields.previous, fields.previous_until])
    audit_record(
        actor_type=actor_type,
        actor=actor,
        tenant=tenant,
        action=f"{_AUDIT_ENTITY[scheme]}.retire_previous",
        obj=tenant,
        before=before,
        after=_signing_state(tenant, scheme),
    )
    return True


def signing_secret_retire_previous(*, tenant: Tenant, actor_type: str, actor: str) -> bool:
    return signing_key_retire_previous(
        tenant=tenant, actor_type=actor_type, actor=actor, scheme=SigningScheme.V1
    )


_AUDIT_ENTITY = {SigningScheme.V1: "signing_secret", SigningScheme.V1A: "signing_key"}


@transaction.atomic
def signing_scheme_set(*, tenant: Tenant, scheme: str, actor_type: str, actor: str) -> Tenant:
    """Sign the tenant's callbacks with `scheme` from the next attempt on. Its key exists already (every
    tenant has both from its creation), so receivers can be given the public key before the switch; a
    tenant without a v1 secret sends v1 callbacks unsigned."""
    scheme = _clean_scheme(scheme)
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.signing_scheme == scheme:
        return tenant
    before = {"signing_scheme": tenant.signing_scheme}
    update = ["signing_scheme"]
    # A tenant made before v1a existed may lack a key; its public key is there to read at once. (A v1 secret
    # is never made here: nobody would have seen it.)
    if scheme == SigningScheme.V1A and not tenant.signing_private_key:
        tenant.signing_private_key = keys.new_signing_private_key()
        update.append("signing_private_key")
    tenant.signing_scheme = scheme
    tenant.save(update_fields=update)
    audit_record(
        actor_type=actor_type,
        actor=actor,
        tenant=tenant,
        action="tenant.signing_scheme",
        obj=tenant,
        before=before,
        after={"signing_scheme": scheme},
    )
    return tenant


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
