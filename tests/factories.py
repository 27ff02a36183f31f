"""Test data for every test package.

make_task / make_tasks: task rows made directly in the database, bypassing the service, with quick
retries for the engine's tests. make_monitored_task: a row made directly with ordinary retries, for
the monitoring tests, whose attempts come from make_attempts. make_task_in_state: made by the service
(task_create, as the API makes it), then moved to the status a test needs (the worker would move it
there). make_execution: one recorded attempt. make_attempts: a seeded, known mix of unsaved attempts.
backlog_unknown_to_the_planner: due tasks that PostgreSQL's statistics, taken before, know nothing of."""

import random
from datetime import timedelta
from urllib.parse import urlsplit

from django.utils import timezone

from callbacks.domain.vocabulary import FINAL_STATUSES
from callbacks.models import CallbackTask, Outcome, TaskExecution, TaskStatus
from callbacks.services.queues import queue_create
from callbacks.services.tasks import task_create, task_search_entries_create


def make_task(*, tenant, url, **overrides) -> CallbackTask:
    """A task row made directly, due now (or at run_at), retrying quickly."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    now = timezone.now()
    run_at = overrides.pop("run_at", now)
    fields = {
        "tenant": tenant,
        "url": url,
        "origin": f"{parts.scheme}://{parts.hostname}:{port}",
        "method": "POST",
        "payload": '{"hello":"world"}',
        "run_at": run_at,
        "next_attempt_at": run_at,
        "due_at": run_at,
        "max_retries": 3,
        "backoff_initial_seconds": 0.01,
        "backoff_multiplier": 1.5,
        "backoff_max_seconds": 0.05,
        "connect_timeout_seconds": 2,
        "total_timeout_seconds": 5,
        "success_statuses": "200-299",
        "trace_id": "trace-1",
    }
    fields.update(overrides)
    task = CallbackTask.objects.create(**fields)
    task_search_entries_create(tasks=[task])  # as the services do: URL fragments find it
    return task


def make_tasks(count: int, **kwargs) -> list[CallbackTask]:
    """`count` tasks made by make_task."""
    return [make_task(**kwargs) for _ in range(count)]


def past(seconds: float):
    """The time `seconds` ago."""
    return timezone.now() - timedelta(seconds=seconds)


def make_task_in_state(*, tenant, status=TaskStatus.SCHEDULED, attempts=0, **data) -> CallbackTask:
    """A task made by task_create from API-style `data`, then moved to `status` with `attempts` made."""
    data.setdefault("url", "http://127.0.0.1:9/hook")
    if "queue" in data:
        declare_queues(data["queue"])
    task, _ = task_create(tenant=tenant, data=data, actor="factory")
    changes = {"status": status, "attempts": attempts}
    if status in FINAL_STATUSES:
        changes["finished_at"] = timezone.now()
    if status in (TaskStatus.QUEUED, TaskStatus.RUNNING):
        changes["locked_until"] = timezone.now() + timedelta(minutes=2)
        changes["locked_by"] = "token-1"
    CallbackTask.objects.filter(pk=task.pk).update(**changes)
    task.refresh_from_db()
    return task


def declare_queues(*names) -> None:
    """Queues declared as an operator declares them, so callbacks may name them."""
    for name in names:
        queue_create(name=name, actor_type="user", actor="factory")


def make_execution(*, task, attempt, outcome=Outcome.HTTP_5XX, status_code=503, **fields) -> TaskExecution:
    """One saved attempt of `task`, masked as the recorder keeps it (a 503 unless told)."""
    return TaskExecution.objects.create(
        task=task,
        tenant=task.tenant,
        attempt=attempt,
        started_at=fields.pop("started_at", timezone.now()),
        duration_ms=12.5,
        outcome=outcome,
        status_code=status_code,
        request_method=task.method,
        request_url=task.url,
        request_headers={"Authorization": "********", "X-Callback-Attempt": str(attempt)},
        response_headers={"Content-Type": "text/plain"},
        response_body="busy",
        **fields,
    )


# (outcome, status code) of the known attempt set; durations None mean "refused before sending".
_KINDS = [
    ("success", 200, 6),
    ("success", 204, 2),
    ("http_5xx", 503, 2),
    ("http_4xx", 404, 1),
    ("http_3xx", 302, 1),
    ("timeout", None, 1),
    ("connection", None, 1),
]


def make_monitored_task(
    *, tenant, url="http://127.0.0.1:9/hook", queue="default", **overrides
) -> CallbackTask:
    """A task row made directly, due now, with ordinary retries; never sent by these tests."""
    parts = urlsplit(url)
    now = timezone.now()
    fields = {
        "tenant": tenant,
        "url": url,
        "origin": f"{parts.scheme}://{parts.hostname}:{parts.port or 80}",
        "payload": "{}",
        "queue": queue,
        "run_at": now,
        "next_attempt_at": now,
        "due_at": now,
        "max_retries": 3,
        "backoff_initial_seconds": 1,
        "backoff_multiplier": 1.5,
        "backoff_max_seconds": 60,
        "connect_timeout_seconds": 2,
        "total_timeout_seconds": 5,
        "trace_id": "trace-1",
    }
    fields.update(overrides)
    task = CallbackTask.objects.create(**fields)
    task_search_entries_create(tasks=[task])  # as the services do: URL fragments find it
    return task


def make_attempts(*, task, count: int, seed: int, started_at=None, spread_seconds: float = 150) -> list:
    """`count` unsaved attempts of `task` with a known, seeded mix of outcomes and durations."""
    rng = random.Random(seed)
    weighted = [kind for kind in _KINDS for _ in range(kind[2])]
    base = started_at or timezone.now() - timedelta(seconds=spread_seconds + 1)
    attempts = []
    for number in range(count):
        outcome, status, _ = rng.choice(weighted)
        if outcome == "connection":
            duration = None if rng.random() < 0.5 else rng.uniform(0.2, 3)
        elif outcome == "timeout":
            duration = 5000.0
        else:
            duration = round(rng.lognormvariate(4.5, 1.0), 3)  # median ~90 ms, a long tail
        attempts.append(
            TaskExecution(
                task=task,
                tenant_id=task.tenant_id,
                attempt=number + 1,
                started_at=base + timedelta(seconds=rng.uniform(0, spread_seconds)),
                duration_ms=duration,
                outcome=outcome,
                status_code=status,
                error="" if outcome == "success" else f"{outcome} Bearer s3cretTOKEN",
                request_method="POST",
                request_url=task.url,
                request_headers={},
                response_body="ok" if status else "",
            )
        )
    return attempts


def backlog_unknown_to_the_planner(*, tenant, count: int) -> list[CallbackTask]:
    """PostgreSQL statistics of a service that keeps up (finished tasks only, with no next attempt,
    analyzed), then `count` tasks due that those statistics know nothing of: the first a minute ago,
    the others 30 s ago. Returns the due tasks, earliest first."""
    now = timezone.now()
    for number in range(20):
        make_task(
            tenant=tenant,
            url=f"http://a.example/done/{number}",
            status=TaskStatus.SUCCEEDED,
            next_attempt_at=None,
            finished_at=now,
        )
    analyze_task_table()
    earliest = make_task(tenant=tenant, url="http://a.example/hook", run_at=now - timedelta(seconds=60))
    copied = [
        field.attname
        for field in CallbackTask._meta.concrete_fields
        if field.attname not in ("id", "next_attempt_at")
    ]
    CallbackTask.objects.bulk_create(
        CallbackTask(
            **{name: getattr(earliest, name) for name in copied}, next_attempt_at=now - timedelta(seconds=30)
        )
        for _ in range(count - 1)
    )
    return [earliest, *CallbackTask.objects.exclude(pk=earliest.pk).filter(status=TaskStatus.SCHEDULED)]


def analyze_task_table() -> None:
    """PostgreSQL's statistics of the task table taken now."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {CallbackTask._meta.db_table}")
