"""manage.py rotate_secret TENANT [--scheme v1|v1a] [--overlap SECONDS] [--retire-previous]: rotate a
tenant's signing secret (v1) or ed25519 key (v1a) without downtime."""

from django.core.management.base import BaseCommand, CommandError

from callbacks.domain.bounds import DEFAULT_SIGNING_OVERLAP_SECONDS
from callbacks.domain.vocabulary import ActorType, SigningScheme
from callbacks.errors import ApplicationError
from callbacks.models import Tenant
from callbacks.services.tenants import signing_key_retire_previous, signing_key_rotate

ACTOR = "manage.py"


class Command(BaseCommand):
    help = (
        "Give a tenant a new signing secret (v1, printed once) or ed25519 key (v1a, its public key is "
        "printed). The old one keeps signing too (both signatures are sent) for --overlap seconds, or "
        "until --retire-previous, so receivers switch without missing a callback."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="the tenant's name")
        parser.add_argument(
            "--scheme", choices=SigningScheme.values, default=SigningScheme.V1, help="which key (default v1)"
        )
        parser.add_argument(
            "--overlap",
            type=int,
            default=DEFAULT_SIGNING_OVERLAP_SECONDS,
            help=f"seconds the previous key keeps signing (default {DEFAULT_SIGNING_OVERLAP_SECONDS})",
        )
        parser.add_argument(
            "--retire-previous",
            action="store_true",
            help="do not rotate: stop signing with the previous key now (once every receiver has the new one)",
        )

    def handle(self, *args, tenant, scheme, overlap, retire_previous, **options):
        tenant_obj = Tenant.objects.filter(name=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"no tenant named {tenant!r}")
        what = "secret" if scheme == SigningScheme.V1 else "key"
        if retire_previous:
            retired = signing_key_retire_previous(
                tenant=tenant_obj, scheme=scheme, actor_type=ActorType.USER, actor=ACTOR
            )
            if not retired:
                raise CommandError(f"{tenant} has no previous signing {what} to retire")
            self.stdout.write(f"{tenant}: callbacks are now signed with the current {what} only.")
            return
        try:
            given = signing_key_rotate(
                tenant=tenant_obj,
                scheme=scheme,
                overlap_seconds=overlap,
                actor_type=ActorType.USER,
                actor=ACTOR,
            )
        except ApplicationError as exc:
            raise CommandError(f"{exc.message}: {exc.fields}") from None
        if scheme == SigningScheme.V1:
            self.stdout.write(f"new signing secret: {given}")
            self.stdout.write("Store it now: it is not shown again.")
        else:
            self.stdout.write(f"new public key: {given}")
        self.stdout.write(
            f"Callbacks carry both signatures for {overlap} s, or until "
            f"`manage.py rotate_secret {tenant} --scheme {scheme} --retire-previous`."
        )
