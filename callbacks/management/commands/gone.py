"""manage.py gone list|clear: URLs that answered 410 Gone and are no longer called for their tenant."""

from django.core.management.base import BaseCommand, CommandError

from callbacks.domain.vocabulary import ActorType
from callbacks.selectors import gone_url_list
from callbacks.services.gone import gone_url_clear, url_digest

ACTOR = "manage.py"


class Command(BaseCommand):
    help = (
        "List the URLs marked gone (a receiver answered 410: the tenant's callbacks to it end `gone` "
        "unsent), or clear one so they are delivered again."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{list,clear}")
        show = actions.add_parser("list", help="list gone URLs, newest first")
        show.add_argument("--tenant", help="only this tenant's (its name)")
        clear = actions.add_parser("clear", help="deliver to a gone URL again")
        clear.add_argument("tenant", help="the tenant's name")
        clear.add_argument("url", help="the URL exactly as listed")

    def handle(self, *args, action, tenant=None, url=None, **options):
        rows = gone_url_list()
        if tenant:
            rows = rows.filter(tenant__name=tenant)
        if action == "list":
            rows = list(rows)
            if not rows:
                self.stdout.write("no gone URLs")
            for gone in rows:
                self.stdout.write(f"{gone.marked_at:%Y-%m-%d %H:%M:%S}  {gone.tenant.name}  {gone.url}")
            return
        gone = rows.filter(url_digest=url_digest(url)).first()
        if gone is None:
            raise CommandError(f"{url} is not marked gone for {tenant!r}")
        gone_url_clear(gone=gone, actor_type=ActorType.USER, actor=ACTOR)
        self.stdout.write(f"{tenant}: {url} is called again")
