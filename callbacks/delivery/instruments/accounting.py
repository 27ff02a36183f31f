"""What the engine accounts for after it writes attempts: metrics, roll-ups, attempt log lines,
and a dead letter's notification.

Runs on the delivery hot path, once per flush (every ~50 ms), in the recorder. A failure here is
logged and swallowed: statistics must never stop delivery.
"""

import logging
import uuid
from collections import defaultdict

from callbacks.delivery.instruments import metrics
from callbacks.delivery.instruments.rollups import rollup_add
from callbacks.labels import OTHER_QUEUE, host_of, status_class
from callbacks.masking import mask_text
from callbacks.models import CallbackTask, TaskExecution, TaskStatus
from callbacks.services.notifications import notify_dead

logger = logging.getLogger(__name__)
attempt_logger = logging.getLogger("callbacks.attempts")


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
        queue = metrics.queue_label(task.queue)
        metrics.TASKS_FINISHED_TOTAL.labels(queue, status).inc()
        if status == TaskStatus.DEAD:
            metrics.DEAD_LETTERS_TOTAL.labels(queue).inc()
    except Exception:
        logger.exception("updating task metrics failed")
    if status == TaskStatus.DEAD:
        try:
            notify_dead(task=task)
        except Exception:
            logger.exception("creating the dead-letter notification of task %s failed", task.id)


def _update_metrics(executions, tasks) -> None:
    counts = defaultdict(int)
    durations, lags = defaultdict(list), []
    for execution in executions:
        task = tasks.get(execution.task_id)
        queue = metrics.queue_label(task.queue) if task else OTHER_QUEUE
        counts[(queue, execution.outcome, status_class(execution.status_code))] += 1
        if execution.duration_ms is not None:
            durations[queue].append(execution.duration_ms / 1000)
        if task is not None and task.due_at is not None and execution.started_at is not None:
            lags.append(dispatch_lag_seconds(task, sent_at=execution.started_at))
    for labels, count in counts.items():
        metrics.ATTEMPTS_TOTAL.labels(*labels).inc(count)
    for queue, seconds in durations.items():
        metrics.observe_many(metrics.ATTEMPT_DURATION_SECONDS.labels(queue), seconds)
    metrics.observe_many(metrics.DISPATCH_LAG_SECONDS, lags)


def dispatch_lag_seconds(task, *, sent_at) -> float:
    """How late the service was in sending: from when it could first have sent the attempt, that is its
    due time, or the task's creation when it was registered already due (a run_at years in the past is
    the caller's date, not years of delay)."""
    could_send_from = max(task.due_at, task.created_at)
    return max(0.0, (sent_at - could_send_from).total_seconds())


def log_attempt(execution, task=None) -> None:
    """One line per delivery attempt; its fields become JSON keys when LOG_JSON is on."""
    if not attempt_logger.isEnabledFor(logging.INFO):
        return
    fields = {
        "task_id": str(execution.task_id),
        "trace_id": task.trace_id if task else "",
        "tenant_id": str(execution.tenant_id),
        "host": host_of(task.origin) if task else "",
        "attempt": execution.attempt,
        "outcome": execution.outcome,
        "status": execution.status_code,
        "ms": round(execution.duration_ms, 1) if execution.duration_ms is not None else None,
    }
    error = mask_text(execution.error)[:300] if execution.error else ""
    if error:
        fields["error"] = error
    attempt_logger.info(
        "attempt %s of %s to %s: %s %s in %s ms%s",
        fields["attempt"],
        fields["task_id"],
        fields["host"],
        fields["outcome"],
        fields["status"] if fields["status"] is not None else "-",
        fields["ms"] if fields["ms"] is not None else "-",
        f" ({error})" if error else "",
        extra=fields,
    )
