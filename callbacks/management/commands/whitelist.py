"""manage.py whitelist add|remove|list|enforce --tenant NAME: a tenant's URL whitelist."""

import json

from django.core.management.base import BaseCommand, CommandError

from callbacks.domain.vocabulary import ActorType
from callbacks.errors import ApplicationError
from callbacks.models import Tenant, UrlWhitelistEntry
from callbacks.services.whitelist import whitelist_enforce_set, whitelist_entry_create, whitelist_entry_delete

ACTOR = "manage.py"

PATTERN_HELP = """Entries: HOST is an exact name, an IP address, or *.suffix (matches subdomains only, not the
suffix itself). No --port means the scheme's default port (80/443), not any port. --path-prefix starts
with / and matches whole segments (/hooks matches /hooks and /hooks/x, not /hooksx)."""


class Command(BaseCommand):
    help = "Show and change a tenant's URL whitelist, and whether the tenant enforces it."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{add,remove,list,enforce}")
        add = actions.add_parser("add", help="add an entry", description=PATTERN_HELP)
        add.add_argument("--tenant", required=True, help="the tenant's name")
        add.add_argument("host", help="example.com, *.example.com, 203.0.113.7 or [2001:db8::1]")
        add.add_argument("--scheme", default="", choices=["", "http", "https"], help="default: both")
        add.add_argument("--port", type=int, default=None, help="default: the scheme's default port")
        add.add_argument("--path-prefix", default="", help="e.g. /hooks (default: any path)")
        add.add_argument("--note", default="", help="why the entry is there")

        remove = actions.add_parser("remove", help="remove an entry by its id (see list)")
        remove.add_argument("--tenant", required=True, help="the tenant's name")
        remove.add_argument("entry_id", type=int, help="the entry's id")

        show = actions.add_parser("list", help="list the entries and whether they are enforced")
        show.add_argument("--tenant", required=True, help="the tenant's name")
        show.add_argument("--json", action="store_true", help="one JSON document instead of a table")

        enforce = actions.add_parser("enforce", help="turn enforcement on or off")
        enforce.add_argument("--tenant", required=True, help="the tenant's name")
        enforce.add_argument("state", choices=["on", "off"])

    def handle(self, *args, action, tenant, **options):
        tenant_obj = Tenant.objects.filter(name=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"no tenant named {tenant!r} (see create_tenant)")
        try:
            getattr(self, f"_{action}")(tenant_obj, **options)
        except ApplicationError as exc:
            details = "; ".join(f"{field}: {', '.join(map(str, why))}" for field, why in exc.fields.items())
            raise CommandError(f"{exc.message} {details}".strip()) from None

    def _add(self, tenant, *, host, scheme, port, path_prefix, note, **options):
        entry = whitelist_entry_create(
            tenant=tenant,
            host=host,
            scheme=scheme,
            port=port,
            path_prefix=path_prefix,
            note=note,
            actor_type=ActorType.USER,
            actor=ACTOR,
        )
        self.stdout.write(f"added entry {entry.pk}: {entry}")
        if not tenant.enforce_whitelist:
            self.stdout.write(
                f"note: {tenant.name} does not enforce its whitelist (whitelist enforce ... on)"
            )

    def _remove(self, tenant, *, entry_id, **options):
        entry = UrlWhitelistEntry.objects.filter(tenant=tenant, pk=entry_id).first()
        if entry is None:
            raise CommandError(f"{tenant.name} has no whitelist entry {entry_id} (see whitelist list)")
        whitelist_entry_delete(entry=entry, actor_type=ActorType.USER, actor=ACTOR)
        self.stdout.write(f"removed entry {entry_id}: {entry}")

    def _list(self, tenant, *, json: bool = False, **options):
        entries = list(UrlWhitelistEntry.objects.filter(tenant=tenant).order_by("created_at", "id"))
        if json:
            self.stdout.write(_json_document(tenant, entries))
            return
        state = "enforced" if tenant.enforce_whitelist else "not enforced"
        self.stdout.write(f"{tenant.name}: whitelist {state}, {len(entries)} entries")
        for entry in entries:
            flags = "" if entry.enabled else "  (disabled)"
            note = f"  # {entry.note}" if entry.note else ""
            self.stdout.write(f"{entry.pk:>6}  {entry}{flags}{note}")

    def _enforce(self, tenant, *, state, **options):
        whitelist_enforce_set(tenant=tenant, enforce=state == "on", actor_type=ActorType.USER, actor=ACTOR)
        self.stdout.write(f"{tenant.name}: whitelist enforcement {state}")


def _json_document(tenant, entries) -> str:
    return json.dumps(
        {
            "tenant": tenant.name,
            "enforced": tenant.enforce_whitelist,
            "entries": [
                {
                    "id": entry.pk,
                    "host": entry.host,
                    "scheme": entry.scheme,
                    "port": entry.port,
                    "path_prefix": entry.path_prefix,
                    "enabled": entry.enabled,
                    "note": entry.note,
                }
                for entry in entries
            ],
        },
        indent=2,
    )
