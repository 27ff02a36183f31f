"""Inserting many rows at once: PostgreSQL's COPY where the hot path writes history.

Every callback adds an attempt row and status-history rows. Django's bulk_create builds an
INSERT ... UNNEST whose parameters psycopg quotes one by one in Python: in the worker that was
~15 % of a callback's CPU (`python -m bench.profile --py-spy`). COPY streams the same rows
through psycopg's C row writer instead. Other databases (SQLite, the embedded default) get
bulk_create.

Updating many rows at once goes through `binary_cursor`: Django's psycopg cursors merge the
parameters into the SQL text in Python, and a statement of thousands of placeholders is also
parsed anew each time (psycopg caches only short statements); a constant statement over arrays
bound in binary costs a tenth of that.
"""

import json
import re
from contextlib import contextmanager
from functools import lru_cache

from django.db import connection, models

from callbacks.sealing import SealedTextField, SealError


def insert(model: type[models.Model], objects: list[models.Model]) -> None:
    """Insert `objects` (unsaved instances, their database defaults filled in by Django) in
    one round trip. Primary keys made by the database are not read back."""
    if not objects:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objects)
        return
    fields = [field for field in model._meta.concrete_fields if not isinstance(field, models.AutoField)]
    _copy(model, fields, ([getattr(obj, field.attname) for field in fields] for obj in objects))


def insert_rows(model: type[models.Model], columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert rows given as tuples of the values of `columns` (attribute names: `task_id`), in
    one round trip, without a model instance per row (building one costs more than writing it).
    Every column without a database-made value must be among `columns`."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create([model(**dict(zip(columns, row, strict=True))) for row in rows])
        return
    by_name = {field.attname: field for field in model._meta.concrete_fields}
    fields = [by_name[column] for column in columns]
    missing = {name for name, field in by_name.items() if not isinstance(field, models.AutoField)} - set(
        columns
    )
    if missing:
        raise ValueError(f"insert_rows({model.__name__}): no value for {sorted(missing)}")
    _copy(model, fields, rows)


def _copy(model: type[models.Model], fields: list[models.Field], rows) -> None:
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    convert = [_converter(field) for field in fields]
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
        ) as copy:
            if all(to_db is _unchanged for to_db in convert):
                for row in rows:
                    copy.write_row(row)
            else:
                for row in rows:
                    copy.write_row([to_db(value) for value, to_db in zip(row, convert, strict=True)])


def _converter(field: models.Field):
    if isinstance(field, models.JSONField):
        encoder = field.encoder

        def to_json(value):
            return None if value is None else json.dumps(value, cls=encoder)

        return to_json
    return _unchanged


def _unchanged(value):
    return value


_NAMED_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


@lru_cache(maxsize=64)
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """A statement with %(name)s placeholders as PostgreSQL's own $1, $2 ... (each name one number,
    however often it appears; %% a plain %), and the names in their numbers' order. psycopg does
    this itself on every execute, but caches it only for statements under 4 KB: the lanes' refill
    is longer, and was split by a regular expression each time (2 % of a worker's CPU)."""
    names: list[str] = []

    def number(match: re.Match) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _NAMED_PLACEHOLDER.sub(number, sql), tuple(names)


@contextmanager
def binary_cursor(*, raw: bool = False):
    """A psycopg cursor on Django's connection (PostgreSQL only) that sends the parameters apart
    from the statement; `%b` placeholders bind them in binary. It joins the transaction open on
    the connection like any Django cursor, but Django's query log does not see it. A `raw` one takes
    PostgreSQL's own $1, $2 ... placeholders and passes the statement as it is (`positional`).

    Errors come out as Django's (DatabaseError and its kinds), and a lost connection is marked as
    such, as through a Django cursor: close_old_connections() then replaces it, where it would
    otherwise keep a dead connection for ever (a database restart)."""
    import psycopg

    kind = psycopg.RawCursor if raw else psycopg.Cursor
    connection.ensure_connection()
    with connection.wrap_database_errors, kind(connection.connection) as cursor:
        yield cursor


def fetch_instances(model: type[models.Model], sql: str, params) -> list[models.Model]:
    """Instances of `model` from a statement that returns all its concrete columns in field
    order (PostgreSQL only), for hot paths where a RawQuerySet's per-value conversions cost more
    than the statement: the rows come back in binary, every value already its Python type."""
    return [instance for _extra, instance in fetch_instances_after(model, sql, params, extra=0)]


def fetch_instances_after(
    model: type[models.Model], sql: str, params, *, extra: int, prepare: bool = False
) -> list[tuple]:
    """As fetch_instances, for a statement whose rows start with `extra` columns of their own before
    the model's: (those columns as a tuple, the instance or None where the model's columns are NULL,
    as a LEFT JOIN that matched nothing leaves them).

    `prepare`: keep the statement prepared on the connection (DB_PREPARED_STATEMENTS), for one run
    so often that parsing and planning it each time cost more than running it. PostgreSQL then
    plans it once for any parameters (after five runs, when that plan is no costlier), so only a
    statement whose plan does not hinge on its parameters' values should ask."""
    fields = model._meta.concrete_fields
    if any(isinstance(field, models.JSONField) and field.decoder is not None for field in fields):
        raise NotImplementedError(f"{model.__name__} has a JSONField with a custom decoder")
    names = [field.attname for field in fields]
    # Binary rows skip Django's converters; a sealed column must still be opened.
    sealed = [(index, field) for index, field in enumerate(fields) if isinstance(field, SealedTextField)]
    named = isinstance(params, dict)
    if named:
        # On a raw cursor, the statement's placeholders turned into $n once.
        sql, order = positional(sql)
        params = [params[name] for name in order]
    with binary_cursor(raw=named) as cursor:
        cursor.execute(sql, params, binary=True, prepare=prepare)
        rows = cursor.fetchall()
    found = []
    for row in rows:
        values, unopened = row[extra:], {}
        if sealed and values[0] is not None:
            values = list(values)
            for index, field in sealed:
                values[index] = _opened(field, values[index], unopened)
        instance = None if row[extra] is None else model.from_db(connection.alias, names, values)
        if unopened:
            instance.unopened_secrets = unopened
        found.append((row[:extra], instance))
    return found


def _opened(field: SealedTextField, value, unopened: dict):
    """A sealed column's value opened. One sealed with a key since removed must not stop the rows
    beside it (the hot path loads many tenants at once): it comes back empty, and `unopened` says why."""
    try:
        return field.from_db_value(value, None, connection)
    except SealError as exc:
        unopened[field.name] = str(exc)
        return ""


def in_bulk(model: type[models.Model], ids) -> dict:
    """model.objects.in_bulk(ids) for hot paths: one constant statement, its rows loaded in binary."""
    if connection.vendor != "postgresql":
        return _in_bulk_orm(model, ids)
    meta = model._meta
    columns = ", ".join(connection.ops.quote_name(field.column) for field in meta.concrete_fields)
    sql = (
        f"SELECT {columns} FROM {connection.ops.quote_name(meta.db_table)} "
        f"WHERE {connection.ops.quote_name(meta.pk.column)} = ANY(%s)"
    )
    return {obj.pk: obj for obj in fetch_instances(model, sql, [list(ids)])}


def _in_bulk_orm(model: type[models.Model], ids) -> dict:
    """in_bulk through the ORM, a sealed value no key opens left empty and said (as fetch_instances
    does): the ORM would raise for the whole load, and one row must not stop the rows beside it."""
    sealed = [field for field in model._meta.concrete_fields if isinstance(field, SealedTextField)]
    if not sealed:
        return model.objects.in_bulk(ids)
    found = model.objects.defer(*(field.name for field in sealed)).in_bulk(ids)
    meta, quote = model._meta, connection.ops.quote_name
    prepared = [meta.pk.get_db_prep_value(pk, connection) for pk in found]
    if not prepared:
        return found
    columns = ", ".join(quote(field.column) for field in sealed)
    placeholders = ", ".join(["%s"] * len(prepared))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quote(meta.pk.column)}, {columns} FROM {quote(meta.db_table)} "
            f"WHERE {quote(meta.pk.column)} IN ({placeholders})",
            prepared,
        )
        rows = cursor.fetchall()
    for pk, *values in rows:
        instance = found[meta.pk.to_python(pk)]
        unopened = {}
        for field, value in zip(sealed, values, strict=True):
            setattr(instance, field.attname, _opened(field, value, unopened))
        if unopened:
            instance.unopened_secrets = unopened
    return found
