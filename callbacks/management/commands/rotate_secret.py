"""manage.py rotate_secret TENANT [--retire-previous]: rotate a tenant's signing secret without downtime."""

from django.core.management.base import BaseCommand, CommandError

from callbacks.domain.vocabulary import ActorType
from callbacks.models import Tenant
from callbacks.services.tenants import signing_secret_retire_previous, signing_secret_rotate

ACTOR = "manage.py"


class Command(BaseCommand):
    help = (
        "Give a tenant a new signing secret and print it once. The old one keeps signing too (both "
        "signatures are sent) until --retire-previous, so receivers switch without missing a callback."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="the tenant's name")
        parser.add_argument(
            "--retire-previous",
            action="store_true",
            help="do not rotate: stop signing with the previous secret (once every receiver has the new one)",
        )

    def handle(self, *args, tenant, retire_previous, **options):
        tenant_obj = Tenant.objects.filter(name=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"no tenant named {tenant!r}")
        if retire_previous:
            if not signing_secret_retire_previous(tenant=tenant_obj, actor_type=ActorType.USER, actor=ACTOR):
                raise CommandError(f"{tenant} has no previous signing secret to retire")
            self.stdout.write(f"{tenant}: callbacks are now signed with the current secret only.")
            return
        secret = signing_secret_rotate(tenant=tenant_obj, actor_type=ActorType.USER, actor=ACTOR)
        self.stdout.write(f"new signing secret: {secret}")
        self.stdout.write("Store it now: it is not shown again. Callbacks carry both signatures until")
        self.stdout.write(f"`manage.py rotate_secret {tenant} --retire-previous`.")
