"""The stats roll-ups' writer: attempts added to their minute's and hour's AttemptRollup rows.

Runs on the delivery hot path, once per flush (every ~50 ms), so it aggregates the batch in
memory and writes with one INSERT ... ON CONFLICT DO UPDATE for a usual batch.
"""

import uuid
from datetime import UTC
from functools import lru_cache

from django.db import connection, transaction

from callbacks.buckets import BUCKET_COUNT, BUCKET_FIELDS, bucket_index
from callbacks.labels import host_of, status_class
from callbacks.models import AttemptRollup, CallbackTask, TaskExecution

_KEY_COLUMNS = ("period_minutes", "period_start", "tenant_id", "queue", "host", "outcome", "status_class")
_SUM_COLUMNS = ("count", "timed_count", "sum_ms", *BUCKET_FIELDS)
# Rows per statement: stays under SQLite's 32766 and PostgreSQL's 65535 bound parameters.
_MAX_ROWS_PER_STATEMENT = 500


def rollup_add(*, executions: list[TaskExecution], tasks: dict[uuid.UUID, CallbackTask]) -> None:
    """Add attempts to their minute and hour roll-ups: one upsert statement for a usual batch."""
    rows = _aggregate(executions, tasks)
    if not rows:
        return
    # Sorted keys: two workers upserting overlapping rows lock them in the same order, no deadlock.
    keys = sorted(rows)
    with transaction.atomic():  # a savepoint when the caller has a transaction open
        with connection.cursor() as cursor:
            for start in range(0, len(keys), _MAX_ROWS_PER_STATEMENT):
                chunk = keys[start : start + _MAX_ROWS_PER_STATEMENT]
                params = []
                for key in chunk:
                    params.extend(_db_key(key))
                    params.extend(rows[key])
                cursor.execute(_upsert_sql(len(chunk)), params)


def _aggregate(executions, tasks) -> dict[tuple, list]:
    """{(period, start, tenant_id, queue, host, outcome, status_class): [count, timed, sum, *buckets, max]}"""
    rows = {}
    for execution in executions:
        task = tasks.get(execution.task_id)
        minute = execution.started_at.astimezone(UTC).replace(second=0, microsecond=0)
        labels = (
            execution.tenant_id,
            task.queue if task else "",
            host_of(task.origin) if task else "",
            execution.outcome,
            status_class(execution.status_code),
        )
        duration = execution.duration_ms
        if duration is not None:
            duration = max(float(duration), 0.0)
            bucket = 3 + bucket_index(duration)
        for key in ((1, minute, *labels), (60, minute.replace(minute=0), *labels)):
            row = rows.get(key)
            if row is None:
                row = rows[key] = [0, 0, 0.0, *([0] * BUCKET_COUNT), 0.0]
            row[0] += 1
            if duration is not None:
                row[1] += 1
                row[2] += duration
                row[bucket] += 1
                row[-1] = max(row[-1], duration)
    return rows


def _db_key(key: tuple) -> list:
    period, start, tenant_id, *rest = key
    tenant_field = AttemptRollup._meta.get_field("tenant").target_field
    return [
        period,
        connection.ops.adapt_datetimefield_value(start),
        tenant_field.get_db_prep_value(tenant_id, connection),
        *rest,
    ]


@lru_cache(maxsize=64)
def _upsert_sql_for(vendor: str, row_count: int) -> str:
    quote = connection.ops.quote_name
    table = quote(AttemptRollup._meta.db_table)
    columns = (*_KEY_COLUMNS, *_SUM_COLUMNS, "max_ms")
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    greatest = "GREATEST" if vendor == "postgresql" else "MAX"  # SQLite's MAX(a, b) is scalar
    updates = [f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}" for c in _SUM_COLUMNS]
    updates.append(f"{quote('max_ms')} = {greatest}({table}.{quote('max_ms')}, excluded.{quote('max_ms')})")
    return (
        f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES {', '.join([placeholders] * row_count)} "
        f"ON CONFLICT ({', '.join(quote(c) for c in _KEY_COLUMNS)}) DO UPDATE SET {', '.join(updates)}"
    )


def _upsert_sql(row_count: int) -> str:
    return _upsert_sql_for(connection.vendor, row_count)
