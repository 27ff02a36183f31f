"""Writes on tenants' URL whitelists: add, change, remove entries; turn enforcement on or off.

Patterns are checked by callbacks.domain.whitelist.validate_pattern. Every change is audited. This process's
send-time cache forgets the tenant at once; other processes see the change within their cache's TTL.

An enforced whitelist restrains the tenant's own API keys, so those keys cannot widen it: while it is
enforced, a tenant adds an entry only with a key an operator gave the whitelist scope
(TenantApiKey.manages_whitelist). Narrowing it (removing an entry) stays open to every key.
"""

from django.db import transaction

from callbacks import whitelist
from callbacks.domain.vocabulary import ActorType
from callbacks.domain.whitelist import Pattern, validate_pattern
from callbacks.errors import ApplicationError, ConflictError
from callbacks.models import Tenant, UrlWhitelistEntry
from callbacks.services.audit import audit_record
from callbacks.services.tenants import tenant_update_policy

MAX_NOTE = 500


def entry_state(entry: UrlWhitelistEntry) -> dict:
    return {
        "host": entry.host,
        "scheme": entry.scheme,
        "port": entry.port,
        "path_prefix": entry.path_prefix,
        "enabled": entry.enabled,
        "note": entry.note,
    }


@transaction.atomic
def whitelist_entry_create(
    *,
    tenant: Tenant,
    host: str,
    scheme: str = "",
    port: int | None = None,
    path_prefix: str = "",
    note: str = "",
    enabled: bool = True,
    actor_type: str,
    actor: str,
    key_manages_whitelist: bool = False,
) -> UrlWhitelistEntry:
    """A new entry; 400 naming the field for a bad pattern, 409 when the tenant has the same pattern already,
    403 when a tenant's key without the whitelist scope would widen its enforced whitelist."""
    if actor_type == ActorType.TENANT and not key_manages_whitelist:
        whitelist_widening_check(tenant=tenant)
    pattern = validate_pattern(host, scheme, port, path_prefix)
    whitelist_duplicate_check(tenant=tenant, pattern=pattern)
    entry = UrlWhitelistEntry(
        tenant=tenant,
        host=pattern.host,
        scheme=pattern.scheme,
        port=pattern.port,
        path_prefix=pattern.path_prefix,
        note=(note or "")[:MAX_NOTE],
        enabled=enabled,
    )
    entry.full_clean()
    entry.save()
    audit_record(
        actor_type=actor_type,
        actor=actor,
        tenant=tenant,
        action="whitelist.add",
        obj=entry,
        before=None,
        after=entry_state(entry),
    )
    _forget(tenant.pk)
    return entry


@transaction.atomic
def whitelist_entry_update(*, entry: UrlWhitelistEntry, data: dict, actor_type: str, actor: str):
    """Change an entry's pattern fields, `enabled` or `note` (the admin's edit form)."""
    entry = UrlWhitelistEntry.objects.select_for_update().get(pk=entry.pk)
    before = entry_state(entry)
    fields = {**before, **{name: data[name] for name in before if name in data}}
    pattern = validate_pattern(fields["host"], fields["scheme"], fields["port"], fields["path_prefix"])
    whitelist_duplicate_check(tenant=entry.tenant, pattern=pattern, exclude=entry.pk)
    entry.host, entry.scheme, entry.port, entry.path_prefix = (
        pattern.host,
        pattern.scheme,
        pattern.port,
        pattern.path_prefix,
    )
    entry.enabled = bool(fields["enabled"])
    entry.note = (fields["note"] or "")[:MAX_NOTE]
    entry.full_clean()
    entry.save()
    after = entry_state(entry)
    if after != before:
        audit_record(
            actor_type=actor_type,
            actor=actor,
            tenant=entry.tenant,
            action="whitelist.update",
            obj=entry,
            before=before,
            after=after,
        )
    _forget(entry.tenant_id)
    return entry


@transaction.atomic
def whitelist_entry_delete(*, entry: UrlWhitelistEntry, actor_type: str, actor: str) -> None:
    before = entry_state(entry)
    tenant_id, entry_id = entry.tenant_id, entry.pk
    audit_record(
        actor_type=actor_type,
        actor=actor,
        tenant=entry.tenant,
        action="whitelist.remove",
        obj=entry,
        before=before,
        after=None,
    )
    UrlWhitelistEntry.objects.filter(pk=entry_id).delete()
    _forget(tenant_id)


def whitelist_enforce_set(*, tenant: Tenant, enforce: bool, actor_type: str, actor: str) -> Tenant:
    """Turn the tenant's whitelist enforcement on or off (audited as a policy change)."""
    tenant = tenant_update_policy(
        tenant=tenant, data={"enforce_whitelist": enforce}, actor_type=actor_type, actor=actor
    )
    _forget(tenant.pk)
    return tenant


def whitelist_widening_check(*, tenant: Tenant) -> None:
    """ApplicationError (403) when the tenant's whitelist is enforced; read from its row, not the caller's
    copy, so enforcement switched on a moment ago holds."""
    enforced = Tenant.objects.filter(pk=tenant.pk).values_list("enforce_whitelist", flat=True).first()
    if enforced:
        raise ApplicationError(
            "The whitelist is enforced: only an operator, or an API key given the whitelist scope, "
            "may add entries. Entries may still be removed.",
            code="whitelist_enforced",
            status=403,
        )


def whitelist_duplicate_check(*, tenant: Tenant, pattern: Pattern, exclude=None) -> None:
    """ConflictError when the tenant has this pattern already (another entry than `exclude`); reads only."""
    same = UrlWhitelistEntry.objects.filter(
        tenant=tenant,
        host=pattern.host,
        scheme=pattern.scheme,
        port=pattern.port,
        path_prefix=pattern.path_prefix,
    )
    if exclude is not None:
        same = same.exclude(pk=exclude)
    if same.exists():
        raise ConflictError("The tenant's whitelist has this entry already.", code="whitelist_duplicate")


def _forget(tenant_id) -> None:
    transaction.on_commit(lambda: whitelist.forget(tenant_id))
