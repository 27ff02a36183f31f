"""Sealing every sealed value again with the first of CALLBACKS_ENCRYPTION_KEYS (key rotation)."""

from typing import NamedTuple

from django.db import connection

from callbacks.sealing import SealError, reseal, sealed_fields


class Unopened(NamedTuple):
    model: str
    pk: str
    field: str


class Resealed(NamedTuple):
    count: int
    unopened: list[Unopened]


def sealed_values_reseal() -> Resealed:
    """Seal every stored secret with the first key.

    The stored tokens are read and written as they are (never opened into Python objects), one row at a
    time and only if the row still holds the token read, so processes keep working throughout and a
    secret replaced meanwhile is not overwritten. A value none of the keys opens is left as it is and
    reported: the rest are still sealed again, and the operator learns which key is missing.
    """
    count, unopened = 0, []
    quote = connection.ops.quote_name
    for model, name in sealed_fields():
        meta = model._meta
        table, column = quote(meta.db_table), quote(meta.get_field(name).column)
        pk = quote(meta.pk.column)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {pk}, {column} FROM {table} WHERE {column} <> ''")
            rows = cursor.fetchall()
        for key, token in rows:
            try:
                fresh = reseal(token)
            except SealError:
                # As the model spells its key (SQLite returns a UUID as its 32 hex digits).
                unopened.append(Unopened(meta.label, str(meta.pk.to_python(key)), name))
                continue
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} SET {column} = %s WHERE {pk} = %s AND {column} = %s", [fresh, key, token]
                )
                count += cursor.rowcount
    return Resealed(count, unopened)
