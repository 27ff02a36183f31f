"""Writing what attempts did: execution rows, the tasks' next state, their status history.

One code path for every attempt, whether a worker finished it or the dispatcher found its
worker gone (an `interrupted` attempt). Writes are batched: one bulk insert of executions,
one statement updating all tasks (PostgreSQL), one bulk insert of events, so recording costs
a few round trips per flush rather than per callback.

Each task update is conditional on the task still being `running` under the claim token
that started it: a task cancelled, or reclaimed after its lease ran out, keeps its state.
"""

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from callbacks import bulk, conf, wakeup
from callbacks.delivery import retry
from callbacks.delivery.breaker import recording as breakers
from callbacks.delivery.instruments import accounting
from callbacks.delivery.results import AttemptResult
from callbacks.domain.vocabulary import DECIDED_STATUSES, FINAL_STATUSES, Outcome
from callbacks.models import CallbackTask, TaskEvent, TaskExecution, TaskStatus
from callbacks.services.gone import gone_url_mark
from callbacks.services.notifications import is_notification

logger = logging.getLogger(__name__)


@dataclass
class Finished:
    """One attempt to record: the task as it was started, its claim token and what happened."""

    task: CallbackTask
    token: str
    result: AttemptResult
    worker: str = ""


@dataclass
class Applied:
    """What recording decided for one task (for metrics, breakers, notifications)."""

    task: CallbackTask
    execution: TaskExecution
    decision: retry.Decision
    updated: bool  # False when the task had been cancelled or reclaimed meanwhile


def record(finished: list[Finished], *, now: datetime | None = None) -> list[Applied]:
    if not finished:
        return []
    now = now or timezone.now()
    executions = [_execution_row(item) for item in finished]
    decisions = [retry.decide(item.task, item.result, now=now) for item in finished]
    with transaction.atomic():
        bulk.insert(TaskExecution, executions)
        updated_ids = _update_tasks(finished, decisions, now)
        bulk.insert_rows(
            TaskEvent,
            ("task_id", "at", "from_status", "to_status", "note"),
            [
                (
                    item.task.id,
                    now,
                    TaskStatus.RUNNING,
                    decision.status,
                    _event_note(item.task.attempts, item.result),
                )
                for item, decision in zip(finished, decisions, strict=True)
                if item.task.id in updated_ids
            ],
        )
        applied = [
            Applied(
                task=item.task, execution=execution, decision=decision, updated=item.task.id in updated_ids
            )
            for item, execution, decision in zip(finished, executions, decisions, strict=True)
        ]
        _mark_gone(applied)
        # Breakers move in the tasks' transaction: the dispatcher never sees an attempt's result
        # without the breaker state it caused (exact thresholds, one probe at a time).
        breakers.attempts_recorded(applied, now=now)
        # Slots come back through the lanes, not here; but a retry due before the dispatcher's
        # next look is work it should plan for now (woken at commit). The tasks a breaker held wait for
        # the poll once its probe closed it.
        if _due_soon(decisions, now):
            wakeup.notify_dispatcher()
    _after_record(applied)
    return applied


def _mark_gone(applied: list[Applied]) -> None:
    """A receiver that answered 410 is not called again for that tenant: marked in the transaction
    that records the answer, so no task started after it commits is sent there. Never raises: a
    failed mark must not undo the recording of attempts. In one order (tenant, URL), so that two
    recorders marking the same URLs never wait on each other in a circle."""
    for item in sorted(applied, key=lambda item: (str(item.task.tenant_id), item.task.url)):
        execution = item.execution
        if not (item.updated and execution.outcome == Outcome.GONE and execution.status_code is not None):
            continue
        try:
            with transaction.atomic():
                gone_url_mark(
                    tenant_id=item.task.tenant_id,
                    url=item.task.url,
                    task_id=item.task.id,
                    notify=not is_notification(item.task),
                )
        except Exception:
            logger.exception("marking %s gone for tenant %s failed", item.task.url, item.task.tenant_id)


def database_away(exc: BaseException) -> bool:
    """Whether recording failed because the database is away (a restart, the network), rather than
    for what the attempts hold: then the same batch is tried again later."""
    return isinstance(exc, OperationalError | InterfaceError)


def record_each(finished: list[Finished]) -> list[Finished]:
    """Each attempt recorded alone, after their batch was refused for what it holds; returns those left
    when the database went away meanwhile.

    One attempt the database refuses must not hold up every other one the worker sent: unrecorded,
    their leases would run out and they would be sent again. One refused even alone is recorded
    without what the receiver sent (headers, body, error text); one refused even so is left to its
    lease.
    """
    for index, item in enumerate(finished):
        for attempt in (item, _without_response(item)):
            try:
                record([attempt])
                break
            except Exception as exc:
                if database_away(exc):
                    return finished[index:]
                logger.exception("recording the attempt of task %s failed", item.task.id)
    return []


def _without_response(item: Finished) -> Finished:
    result = dataclasses.replace(
        item.result,
        request_headers={},
        response_headers={},
        response_body="",
        error="the database refused this attempt's record; stored without the response",
    )
    return dataclasses.replace(item, result=result)


def _due_soon(decisions: list[retry.Decision], now: datetime) -> bool:
    """A retry due before the dispatcher's longest sleep: it planned its wake-up without it."""
    longest = max(conf.get("DISPATCH_POLL_SECONDS"), conf.get("DISPATCH_IDLE_SECONDS"))
    soon = now + timedelta(seconds=longest)
    return any(d.next_attempt_at is not None and d.next_attempt_at <= soon for d in decisions)


def _after_record(applied: list[Applied]) -> None:
    """Metrics, roll-ups, attempt logs, dead-letter notifications. Each hook swallows its own
    errors: accounting must never undo or stop delivery."""
    accounting.attempts_recorded([a.execution for a in applied], {a.task.id: a.task for a in applied})
    for item in applied:
        if item.updated and item.decision.status in FINAL_STATUSES:
            accounting.task_finished(item.task, item.decision.status)
    _wake_next_of_ordering_keys(applied)


def _wake_next_of_ordering_keys(applied: list[Applied]) -> None:
    """A keyed task that ended lets the next of its key go: wake the dispatcher rather than leave it
    to the next poll."""
    if any(a.updated and a.decision.status in FINAL_STATUSES and a.task.ordering_key for a in applied):
        try:
            wakeup.notify_dispatcher()
        except DatabaseError:
            logger.warning("could not wake the dispatcher; its poll will find the next task", exc_info=True)


def _execution_row(item: Finished) -> TaskExecution:
    result = item.result
    return TaskExecution(
        task_id=item.task.id,
        tenant_id=item.task.tenant_id,
        attempt=item.task.attempts,
        started_at=result.started_at,
        duration_ms=result.duration_ms,
        outcome=result.outcome,
        status_code=result.status_code,
        error=result.error,
        request_method=result.request_method,
        request_url=result.request_url,
        request_headers=result.request_headers,
        response_headers=result.response_headers,
        response_body=result.response_body,
        response_truncated=result.response_truncated,
        http_version=result.http_version,
        worker=item.worker,
    )


def _event_note(attempt: int, result: AttemptResult) -> str:
    what = f"HTTP {result.status_code}" if result.status_code else result.outcome
    if result.error and result.outcome != Outcome.SUCCESS:
        what = f"{what}: {result.error}"
    return f"attempt {attempt}: {what}"[:500]


def _task_values(item: Finished, decision: retry.Decision, now: datetime) -> dict:
    final = decision.status in DECIDED_STATUSES
    return {
        "status": decision.status,
        "next_attempt_at": decision.next_attempt_at,
        # The next due time, for the due-to-sent lag of the next attempt.
        "due_at": decision.next_attempt_at if decision.next_attempt_at else item.task.due_at,
        "last_status_code": item.result.status_code,
        "last_outcome": item.result.outcome,
        "last_error": item.result.error,
        "finished_at": now if final else None,
        "updated_at": now,
    }


_UPDATE_COLUMNS = (
    "status",
    "next_attempt_at",
    "due_at",
    "last_status_code",
    "last_outcome",
    "last_error",
    "finished_at",
    "updated_at",
)


def _update_tasks(finished: list[Finished], decisions: list[retry.Decision], now: datetime) -> set:
    rows = [
        (item, _task_values(item, decision, now)) for item, decision in zip(finished, decisions, strict=True)
    ]
    if connection.vendor == "postgresql":
        return _update_tasks_postgres(rows)
    updated = set()
    for item, values in rows:
        count = CallbackTask.objects.filter(
            id=item.task.id, status=TaskStatus.RUNNING, locked_by=item.token
        ).update(locked_until=None, locked_by="", **values)
        if count:
            updated.add(item.task.id)
    return updated


def _update_tasks_postgres(rows) -> set:
    """All task updates of a flush in one UPDATE ... FROM unnest(arrays): one column an array,
    bound in binary, so the statement's text is the same for every flush."""
    columns = [[item.task.id for item, _ in rows], [item.token for item, _ in rows]]
    columns.extend([values[column] for _, values in rows] for column in _UPDATE_COLUMNS)
    with bulk.binary_cursor() as cursor:
        cursor.execute(_UPDATE_SQL, columns)
        return {row[0] for row in cursor.fetchall()}


_UPDATE_TYPES = ("text", "timestamptz", "timestamptz", "int", "text", "text", "timestamptz", "timestamptz")
_UPDATE_SQL = (
    f"UPDATE {CallbackTask._meta.db_table} AS t "
    f"SET {', '.join(f'{column} = v.{column}' for column in _UPDATE_COLUMNS)}, locked_until = NULL, locked_by = '' "
    f"FROM unnest(%b::uuid[], %b::text[], {', '.join(f'%b::{kind}[]' for kind in _UPDATE_TYPES)}) "
    f"AS v(id, token, {', '.join(_UPDATE_COLUMNS)}) "
    "WHERE t.id = v.id AND t.status = 'running' AND t.locked_by = v.token RETURNING t.id"
)
