"""Inserting many rows at once: PostgreSQL's COPY where the hot path writes history.

Every callback adds an attempt row and status-history rows. Django's bulk_create builds an
INSERT ... UNNEST whose parameters psycopg quotes one by one in Python: in the worker that was
~15 % of a callback's CPU (`python -m bench.profile --py-spy`). COPY streams the same rows
through psycopg's C row writer instead. Other databases (SQLite, the embedded default) get
bulk_create.
"""

import json

from django.db import connection, models


def insert(model: type[models.Model], objects: list[models.Model]) -> None:
    """Insert `objects` (unsaved instances, their database defaults filled in by Django) in
    one round trip. Primary keys made by the database are not read back."""
    if not objects:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objects)
        return
    fields = [field for field in model._meta.concrete_fields if not isinstance(field, models.AutoField)]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    convert = [_converter(field) for field in fields]
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
        ) as copy:
            for obj in objects:
                copy.write_row(
                    [to_db(getattr(obj, field.attname)) for field, to_db in zip(fields, convert, strict=True)]
                )


def _converter(field: models.Field):
    if isinstance(field, models.JSONField):
        encoder = field.encoder

        def to_json(value):
            return None if value is None else json.dumps(value, cls=encoder)

        return to_json
    return _unchanged


def _unchanged(value):
    return value
