"""manage.py rotate_api_key TENANT [--revoke-old] [--manages-whitelist]: a new API key for a tenant."""

from django.core.management.base import BaseCommand, CommandError

from callbacks.domain.vocabulary import ActorType
from callbacks.models import Tenant
from callbacks.services.tenants import api_key_rotate

ACTOR = "manage.py"


class Command(BaseCommand):
    help = (
        "Give a tenant a new API key and print it once. Its other keys keep working until revoked, so "
        "callers switch without downtime; --revoke-old revokes them at once."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="the tenant's name")
        parser.add_argument(
            "--revoke-old", action="store_true", help="revoke every other key of the tenant now"
        )
        parser.add_argument(
            "--manages-whitelist",
            action="store_true",
            help="the new key may add whitelist entries while the tenant's whitelist is enforced "
            "(other keys may only list and remove them then)",
        )

    def handle(self, *args, tenant, revoke_old, manages_whitelist, **options):
        tenant_obj = Tenant.objects.filter(name=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"no tenant named {tenant!r}")
        key = api_key_rotate(
            tenant=tenant_obj,
            actor_type=ActorType.USER,
            actor=ACTOR,
            revoke_others=revoke_old,
            manages_whitelist=manages_whitelist,
        )
        self.stdout.write(f"new API key: {key}")
        self.stdout.write("Store it now: it is not shown again.")
        if revoke_old:
            self.stdout.write("Every other key of the tenant is revoked.")
        else:
            self.stdout.write("The old keys still work; revoke them with --revoke-old once callers switched.")
