"""manage.py search_backfill: the search rows of tasks that have none (made during an upgrade)."""

from django.core.management.base import BaseCommand

from callbacks.services.tasks import task_search_entries_backfill


class Command(BaseCommand):
    help = (
        "Write what the search by URL reads (each task's path, each origin) for the tasks that have none: "
        "those the previous release made between `migrate` and the restart onto this one. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=1000, help="tasks per transaction")

    def handle(self, *args, batch_size, **options):
        done = task_search_entries_backfill(batch_size=batch_size)
        self.stdout.write(f"wrote the search rows of {done} tasks")
