from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from callbacks import keys
from callbacks.services.tenants import tenant_create


class Command(BaseCommand):
    help = "Create a tenant (a calling business system) and print its API key and signing secret, once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="unique name of the tenant, e.g. the calling system's name")
        parser.add_argument(
            "--enforce-whitelist", action="store_true", help="refuse URLs outside its whitelist"
        )

    def handle(self, *args, name, enforce_whitelist, **options):
        try:
            new = tenant_create(name=name, enforce_whitelist=enforce_whitelist)
        except ValidationError as exc:
            problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
            raise CommandError(f"cannot create tenant {name!r}: {problems}") from None
        except IntegrityError:
            raise CommandError(f"a tenant named {name!r} exists already") from None
        self.stdout.write(f"tenant:          {new.tenant.name} ({new.tenant.id})")
        self.stdout.write(f"API key:         {new.api_key}")
        self.stdout.write(f"signing secret:  {new.signing_secret}")
        self.stdout.write("Store both now: they are not shown again.")
        # Not a secret: for receivers, should the tenant sign with v1a (GET /api/v1/signing/ shows it too).
        self.stdout.write(f"v1a public key:  {keys.public_key_of(new.tenant.signing_private_key)}")
