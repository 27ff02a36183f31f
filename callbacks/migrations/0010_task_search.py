"""Search by a fragment of a task's URL without an index on the task's row, which every status update
writes: the origins tasks were made for, once each, and each task's path and query, written once, with
a trigram index on PostgreSQL (pg_trgm). On SQLite the tables are made and filled, without the trigram
index: the search still works there, by a scan."""

import django.db.models.deletion
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

from callbacks.domain.urls import url_path_and_query

INDEX = "task_search_path_trgm_idx"


def fill_and_index(apps, schema_editor):
    """The tasks made before this migration; then the index, built once over them (faster than growing it
    row by row; afterwards fastupdate, the default, queues new entries and merges them in bulk). The path
    is what callbacks.domain.urls.url_path_and_query gives: all after the scheme's "://" and the host."""
    schema_editor.execute(
        "INSERT INTO callbacks_taskorigin (origin) SELECT DISTINCT origin FROM callbacks_callbacktask"
    )
    if schema_editor.connection.vendor != "postgresql":
        fill_paths_in_python(apps)
        return
    schema_editor.execute(
        "INSERT INTO callbacks_tasksearchpath (task_id, path) "
        "SELECT id, lower(coalesce(substring(url from '^[^:]*://[^/?#]*(.*)$'), '')) FROM callbacks_callbacktask"
    )
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON callbacks_tasksearchpath USING gin (path gin_trgm_ops)"
    )


def fill_paths_in_python(apps):
    task_model = apps.get_model("callbacks", "CallbackTask")
    path_model = apps.get_model("callbacks", "TaskSearchPath")
    rows = []
    for pk, url in task_model.objects.values_list("pk", "url").iterator(chunk_size=2000):
        rows.append(path_model(task_id=pk, path=url_path_and_query(url).lower()))
        if len(rows) == 2000:
            path_model.objects.bulk_create(rows)
            rows = []
    path_model.objects.bulk_create(rows)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("callbacks", "0009_task_schedule_created_index"),
    ]

    operations = [
        # CREATE EXTENSION IF NOT EXISTS pg_trgm; nothing on SQLite. pg_trgm is a trusted extension: the
        # database's owner may create it without being a superuser.
        TrigramExtension(),
        migrations.CreateModel(
            name="TaskOrigin",
            fields=[
                ("origin", models.CharField(max_length=300, primary_key=True, serialize=False)),
            ],
        ),
        migrations.CreateModel(
            name="TaskSearchPath",
            fields=[
                (
                    "task",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="callbacks.callbacktask",
                    ),
                ),
                ("path", models.CharField(blank=True, max_length=2000)),
            ],
        ),
        migrations.RunPython(fill_and_index, drop_index),
    ]
