"""manage.py purge_history --older-than DAYS [--bodies-older-than DAYS] [--batch-size N] [--dry-run]"""

import argparse

from django.core.management.base import BaseCommand
from tqdm import tqdm

from callbacks import conf
from monitoring import retention


class Command(BaseCommand):
    help = (
        "Delete attempts of finished tasks and stats roll-ups older than --older-than days, blank response "
        "bodies older than --bodies-older-than days, in small batches that never block delivery."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", type=_days, default=None, help="days (default CALLBACKS_RETENTION_DAYS)"
        )
        parser.add_argument(
            "--bodies-older-than",
            type=_days,
            default=None,
            help="days (default CALLBACKS_RETENTION_BODY_DAYS)",
        )
        parser.add_argument(
            "--batch-size",
            type=_positive,
            default=retention.DEFAULT_BATCH_SIZE,
            help=f"rows per delete (default {retention.DEFAULT_BATCH_SIZE})",
        )
        parser.add_argument("--dry-run", action="store_true", help="count only, change nothing")

    def handle(self, *args, **options):
        older = options["older_than"] or conf.get("RETENTION_DAYS")
        bodies = options["bodies_older_than"] or conf.get("RETENTION_BODY_DAYS")
        quiet = options["verbosity"] == 0

        def progress(step, total):
            self.stdout.write(f"{step.description}: {total} rows")
            return tqdm(
                total=total, desc=step.name, unit="rows", file=self.stderr._out, disable=quiet or not total
            )

        done = retention.purge_run(
            older_than_days=older,
            bodies_older_than_days=bodies,
            batch_size=options["batch_size"],
            dry_run=options["dry_run"],
            progress=progress,
        )
        verb = "would change" if options["dry_run"] else "changed"
        summary = ", ".join(f"{name} {count}" for name, count in done.items())
        self.stdout.write(self.style.SUCCESS(f"purge_history {verb}: {summary}"))


def _days(text):
    # ArgumentTypeError: argparse shows its message (a ValueError becomes "invalid _days value").
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1 day")
    return value


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
