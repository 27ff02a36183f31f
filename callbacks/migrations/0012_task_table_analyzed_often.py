"""The task table analyzed after every 5,000 changed rows instead of a tenth of the table (PostgreSQL).

A service that keeps up has almost no claimable task whenever autovacuum analyzes the table, so the
statistics, and the sizes of the partial indexes of the due set, describe a backlog as a handful of
rows until the next ANALYZE, which on a table of ten million tasks waited for a million changes: the
claim's statements were planned to read every due task meanwhile. With a fixed threshold the
statistics catch up within one autovacuum round. An ANALYZE samples at most 30,000 rows (the default
statistics target), whatever the table's size."""

from django.db import migrations

TABLE = "callbacks_callbacktask"


def analyze_often(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE {TABLE} SET (autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 5000)"
        )


def analyze_as_configured(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE {TABLE} RESET (autovacuum_analyze_scale_factor, autovacuum_analyze_threshold)"
        )


class Migration(migrations.Migration):
    dependencies = [("callbacks", "0011_labels_indexed_alone")]

    operations = [migrations.RunPython(analyze_often, analyze_as_configured)]
