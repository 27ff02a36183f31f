"""Hooks the worker's recorder calls after it writes attempts: metrics, roll-ups, log lines.

Runs on the delivery hot path, once per flush (every ~50 ms), so it aggregates the batch in
memory and writes the per-minute and per-hour roll-ups with one INSERT ... ON CONFLICT DO UPDATE. A failure
here is logged and swallowed: statistics must never stop delivery.
"""

import logging
import uuid
from collections import defaultdict
from datetime import UTC
from functools import lru_cache

from django.db import connection, transaction

from callbacks.models import CallbackTask, TaskExecution, TaskStatus
from monitoring import metrics
from monitoring.buckets import BUCKET_COUNT, BUCKET_FIELDS, bucket_index
from monitoring.labels import host_of, status_class
from monitoring.logs import log_attempt
from monitoring.models import AttemptRollup

logger = logging.getLogger(__name__)

_KEY_COLUMNS = ("period_minutes", "period_start", "tenant_id", "queue", "host", "outcome", "status_class")
_SUM_COLUMNS = ("count", "timed_count", "sum_ms", *BUCKET_FIELDS)
# Rows per statement: stays under SQLite's 32766 and PostgreSQL's 65535 bound parameters.
_MAX_ROWS_PER_STATEMENT = 500


def attempts_recorded(executions: list[TaskExecution], tasks: dict[uuid.UUID, CallbackTask]) -> None:
    """Account for attempts just written: Prometheus counters, roll-ups, one log line each."""
    if not executions:
        return
    try:
        _update_metrics(executions, tasks)
        for execution in executions:
            log_attempt(execution, tasks.get(execution.task_id))
    except Exception:
        logger.exception("updating attempt metrics failed")
    try:
        rollup_add(executions=executions, tasks=tasks)
    except Exception:
        logger.exception("updating attempt roll-ups failed; stats will miss %d attempts", len(executions))


def task_finished(task: CallbackTask, status: str) -> None:
    """Account for a task that reached a final status; a dead letter notifies its tenant."""
    try:
        metrics.TASKS_FINISHED_TOTAL.labels(task.queue, status).inc()
        if status == TaskStatus.DEAD:
            metrics.DEAD_LETTERS_TOTAL.labels(task.queue).inc()
    except Exception:
        logger.exception("updating task metrics failed")
    if status == TaskStatus.DEAD:
        from monitoring.notifications import notify_dead  # notifications import the task services

        try:
            notify_dead(task=task)
        except Exception:
            logger.exception("creating the dead-letter notification of task %s failed", task.id)


def _update_metrics(executions, tasks) -> None:
    counts = defaultdict(int)
    for execution in executions:
        task = tasks.get(execution.task_id)
        queue = task.queue if task else ""
        counts[(queue, execution.outcome, status_class(execution.status_code))] += 1
        if execution.duration_ms is not None:
            metrics.ATTEMPT_DURATION_SECONDS.labels(queue).observe(execution.duration_ms / 1000)
    for labels, count in counts.items():
        metrics.ATTEMPTS_TOTAL.labels(*labels).inc(count)


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
