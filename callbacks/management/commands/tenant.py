"""manage.py tenant deactivate|reactivate NAME: stop a tenant (keys refused, callbacks held) or let it go again."""

from django.core.management.base import BaseCommand, CommandError

from callbacks.domain.vocabulary import ActorType
from callbacks.models import Tenant
from callbacks.services.tenants import tenant_deactivate, tenant_reactivate

ACTOR = "manage.py"


class Command(BaseCommand):
    help = (
        "Deactivate a tenant (its API keys answer 401, its callbacks are held, none is lost) or "
        "reactivate it (its keys work again, its held callbacks go)."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["deactivate", "reactivate"])
        parser.add_argument("name", help="the tenant's name")

    def handle(self, *args, action, name, **options):
        tenant = Tenant.objects.filter(name=name).first()
        if tenant is None:
            raise CommandError(f"no tenant named {name!r}")
        change = tenant_deactivate if action == "deactivate" else tenant_reactivate
        tenant = change(tenant=tenant, actor_type=ActorType.USER, actor=ACTOR)
        if tenant.is_active:
            self.stdout.write(f"tenant {tenant.name}: active; its keys work and its callbacks go")
        else:
            self.stdout.write(f"tenant {tenant.name}: inactive; its keys answer 401, its callbacks are held")
