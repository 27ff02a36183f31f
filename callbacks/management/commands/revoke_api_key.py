"""manage.py revoke_api_key TENANT PREFIX: revoke one API key of a tenant, named by its first characters."""

from django.core.management.base import BaseCommand, CommandError

from callbacks.domain.vocabulary import ActorType
from callbacks.models import Tenant, TenantApiKey
from callbacks.services.tenants import api_key_revoke

ACTOR = "manage.py"


class Command(BaseCommand):
    help = (
        "Revoke an API key of a tenant: it answers 401 from its next request. The key is named by the "
        "first characters the admin and the audit log show (tc_...); a revoked key cannot be restored."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="the tenant's name")
        parser.add_argument("prefix", help="the key's first characters, e.g. tc_AbCdEfG")

    def handle(self, *args, tenant, prefix, **options):
        tenant_obj = Tenant.objects.filter(name=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"no tenant named {tenant!r}")
        matching = list(
            TenantApiKey.objects.filter(tenant=tenant_obj, prefix__startswith=prefix, revoked_at__isnull=True)
        )
        if not matching:
            raise CommandError(f"tenant {tenant!r} has no active key starting with {prefix!r}")
        if len(matching) > 1:
            raise CommandError(f"{len(matching)} active keys start with {prefix!r}: give more characters")
        api_key_revoke(api_key=matching[0], actor_type=ActorType.USER, actor=ACTOR)
        self.stdout.write(f"revoked API key {matching[0].prefix}… of {tenant_obj.name}")
