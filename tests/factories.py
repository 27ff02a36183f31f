"""Test data made directly in the database, bypassing the API (the API has its own tests)."""

from datetime import timedelta
from urllib.parse import urlsplit

from django.utils import timezone

from callbacks.models import CallbackTask


def make_task(*, tenant, url, **overrides) -> CallbackTask:
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
    return CallbackTask.objects.create(**fields)


def make_tasks(count: int, **kwargs) -> list[CallbackTask]:
    return [make_task(**kwargs) for _ in range(count)]


def past(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)
