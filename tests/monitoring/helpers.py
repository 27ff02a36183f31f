"""Test data for the monitoring tests: tasks and attempts made directly, bypassing the pipeline."""

import random
from datetime import timedelta
from urllib.parse import urlsplit

from django.utils import timezone

from callbacks.models import CallbackTask, TaskExecution

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


def make_task(*, tenant, url="http://127.0.0.1:9/hook", queue="default", **overrides) -> CallbackTask:
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
    return CallbackTask.objects.create(**fields)


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
