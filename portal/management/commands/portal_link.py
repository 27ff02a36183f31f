"""manage.py portal_link TENANT [--hours N] | --revoke ID | --list: sign-in links to a tenant's portal."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from callbacks.domain.vocabulary import ActorType
from callbacks.errors import ApplicationError, NotFoundError
from portal import links
from portal.selectors import portal_link_get, portal_link_list, tenant_named
from portal.services import portal_link_create, portal_link_revoke

ACTOR = "manage.py"
LOCAL_BASE = "http://127.0.0.1:8000"


class Command(BaseCommand):
    help = (
        "Make a sign-in link to a tenant's portal and print its URL (shown this once: only a digest is "
        f"stored). It works for --hours (default {links.DEFAULT_HOURS}, at most {links.MAX_HOURS}) unless "
        "revoked with --revoke ID; --list shows the tenant's links."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="the tenant's name or id")
        parser.add_argument("--hours", type=int, default=None, help="how long the link works")
        parser.add_argument("--revoke", type=int, metavar="ID", help="revoke the tenant's link with this id")
        parser.add_argument("--list", dest="list_links", action="store_true", help="list the tenant's links")
        parser.add_argument(
            "--base-url",
            default=None,
            help="the address tenants reach the service at (default: the first CSRF_TRUSTED_ORIGINS, "
            f"else {LOCAL_BASE})",
        )

    def handle(self, *args, tenant, hours, revoke, list_links, base_url, **options):
        tenant_obj = tenant_named(key=tenant)
        if tenant_obj is None:
            raise CommandError(f"no tenant named {tenant!r} (nor with that id)")
        if revoke is not None:
            return self._revoke(tenant_obj, revoke)
        if list_links:
            return self._list(tenant_obj)
        try:
            link, token = portal_link_create(
                tenant=tenant_obj, hours=hours, actor_type=ActorType.USER, actor=ACTOR
            )
        except ApplicationError as exc:
            raise CommandError(" ".join([exc.message, *sum(exc.fields.values(), [])])) from None
        base = (base_url or (settings.CSRF_TRUSTED_ORIGINS or [LOCAL_BASE])[0]).rstrip("/")
        self.stderr.write(
            f"link {link.pk} for {tenant_obj.name}, works until {link.expires_at:%Y-%m-%d %H:%M:%S} UTC"
        )
        self.stdout.write(base + reverse("portal:signin", args=[token]))
        return None

    def _revoke(self, tenant, link_id):
        try:
            link = portal_link_get(tenant=tenant, link_id=link_id)
        except NotFoundError:
            raise CommandError(f"tenant {tenant.name!r} has no link {link_id}") from None
        if link.revoked_at is not None:
            raise CommandError(
                f"link {link_id} was revoked already, at {link.revoked_at:%Y-%m-%d %H:%M:%S} UTC"
            )
        portal_link_revoke(link=link, actor_type=ActorType.USER, actor=ACTOR)
        self.stdout.write(
            f"revoked link {link_id} of {tenant.name}: its portal sessions end at their next request"
        )

    def _list(self, tenant):
        for link in portal_link_list(tenant=tenant):
            state = "revoked" if link.revoked_at else ("works" if link.is_valid() else "expired")
            self.stdout.write(
                f"{link.pk}\t{state}\tby {link.created_by}\tuntil {link.expires_at:%Y-%m-%d %H:%M:%S}\t"
                f"last used {link.last_used_at or '-'}"
            )
