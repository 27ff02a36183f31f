"""Business and trace ids indexed alone (without the tasks that have none), so the operator's search finds
one across every tenant in one index probe instead of one probe per tenant. Same number of indexes on the
task table as before. On PostgreSQL built and dropped CONCURRENTLY: delivery goes on updating tasks meanwhile."""

from django.db import migrations, models

ADDED = [
    models.Index(condition=~models.Q(business_id=""), fields=["business_id"], name="task_business_idx"),
    models.Index(condition=~models.Q(trace_id=""), fields=["trace_id"], name="task_trace_idx"),
]
REMOVED = [
    models.Index(fields=["tenant", "business_id"], name="task_tenant_business_idx"),
    models.Index(fields=["tenant", "trace_id"], name="task_tenant_trace_idx"),
]


def swap(apps, schema_editor, add, remove):
    model = apps.get_model("callbacks", "CallbackTask")
    concurrently = schema_editor.connection.vendor == "postgresql"
    for index in add:  # the new ones first: lookups keep an index throughout
        if concurrently:
            schema_editor.execute(index.create_sql(model, schema_editor, concurrently=True))
        else:
            schema_editor.add_index(model, index)
    for index in remove:
        if concurrently:
            schema_editor.execute(index.remove_sql(model, schema_editor, concurrently=True))
        else:
            schema_editor.remove_index(model, index)


def forwards(apps, schema_editor):
    swap(apps, schema_editor, ADDED, REMOVED)


def backwards(apps, schema_editor):
    swap(apps, schema_editor, REMOVED, ADDED)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("callbacks", "0010_task_search"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                *(migrations.AddIndex(model_name="callbacktask", index=index) for index in ADDED),
                *(migrations.RemoveIndex(model_name="callbacktask", name=index.name) for index in REMOVED),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
