from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from callbacks import keys
from callbacks.models import Tenant, TenantApiKey


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


def api_key_revoke(*, api_key: TenantApiKey) -> None:
    TenantApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
