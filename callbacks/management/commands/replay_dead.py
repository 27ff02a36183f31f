"""manage.py replay_dead [--tenant NAME] [--since ISO|Nh|Nd] [--dry-run]: send dead letters again."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from callbacks.domain import moments
from callbacks.domain.vocabulary import ActorType
from callbacks.models import Tenant
from callbacks.services.tasks import REPLAY_BATCH, dead_letters, task_replay_dead


class Command(BaseCommand):
    help = (
        "Send dead callbacks again now (each gets one more attempt), in batches with a progress bar. "
        "Narrow with --tenant and --since; --dry-run only counts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="only this tenant's dead letters (by name)")
        parser.add_argument(
            "--since",
            help="only tasks that died at or after this: ISO 8601 (2030-01-01T09:00:00+00:00) or an age "
            "like 30m, 6h, 2d",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would be replayed, change nothing"
        )
        parser.add_argument("--batch-size", type=int, default=REPLAY_BATCH, help=f"default {REPLAY_BATCH}")

    def handle(self, *args, **options):
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        tenant = _tenant(options["tenant"])
        since = parse_since(options["since"]) if options["since"] else None
        total = dead_letters(tenant=tenant, since=since).count()
        if options["dry_run"]:
            self.stdout.write(f"Would replay {total} dead letter(s).")
            return
        quiet = options["verbosity"] == 0
        with tqdm(total=total, unit="tasks", file=self.stderr._out, disable=quiet or not total) as bar:
            count = task_replay_dead(
                tenant=tenant,
                since=since,
                actor_type=ActorType.USER,
                actor="manage.py",
                batch_size=options["batch_size"],
                progress=bar.update,
            )
        self.stdout.write(self.style.SUCCESS(f"Replayed {count} dead letter(s)."))


def _tenant(name: str | None) -> Tenant | None:
    if not name:
        return None
    tenant = Tenant.objects.filter(name=name).first()
    if tenant is None:
        raise CommandError(f"No tenant named {name!r}.")
    return tenant


def parse_since(text: str):
    """An ISO 8601 time with an offset, or an age (30m, 6h, 2d) counted back from now."""
    try:
        return moments.parse_since(text)
    except ValueError as exc:
        raise CommandError(f"--since {text!r}: {exc}") from None
