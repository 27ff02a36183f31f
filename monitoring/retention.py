"""Retention: blank old response bodies, delete old attempts, roll-ups and heartbeats.

Everything goes in small batches, each its own short statement outside any long transaction,
so the purge never holds locks that delivery waits on. The daily run is a django-q2 schedule
(monitoring.apps.DAILY_PURGE, registered after every `migrate`): the default cluster's
scheduler starts `purge_daily` every hour, which purges when no run started within the last day.
`manage.py purge_history` runs it by hand with progress bars.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from callbacks import conf
from callbacks.delivery.instruments.heartbeats import STALE_AFTER
from callbacks.domain.vocabulary import FINAL_STATUSES
from callbacks.models import AttemptRollup, Heartbeat, TaskExecution
from monitoring.models import MaintenanceRun

logger = logging.getLogger(__name__)

RUN_NAME = "purge"
EVERY = timedelta(days=1)
DEFAULT_BATCH_SIZE = 1000


@dataclass
class Step:
    name: str
    description: str
    queryset: object  # the rows this step changes
    blank_bodies: bool = False  # update (blank the body) instead of delete


def purge_plan(*, now, older_than_days: int, bodies_older_than_days: int, bodies_since=None) -> list[Step]:
    body_cutoff = now - timedelta(days=bodies_older_than_days)
    cutoff = now - timedelta(days=older_than_days)
    bodies = TaskExecution.objects.filter(started_at__lt=body_cutoff).exclude(response_body="")
    if bodies_since is not None:
        # Bodies before the previous run's cutoff are blank already: skip scanning them again.
        bodies = bodies.filter(started_at__gte=bodies_since)
    # Deletions first: bodies of attempts about to be deleted are not worth blanking.
    return [
        Step(
            "executions",
            f"attempts of finished tasks before {cutoff:%Y-%m-%d %H:%M}",
            TaskExecution.objects.filter(started_at__lt=cutoff, task__status__in=FINAL_STATUSES),
        ),
        Step(
            "rollups",
            f"stats roll-ups before {cutoff:%Y-%m-%d %H:%M}",
            AttemptRollup.objects.filter(period_start__lt=cutoff),
        ),
        Step("bodies", f"response bodies of attempts before {body_cutoff:%Y-%m-%d %H:%M}", bodies, True),
        Step(
            "heartbeats",
            "heartbeats of processes gone for a day",
            Heartbeat.objects.filter(seen_at__lt=now - STALE_AFTER),
        ),
    ]


def purge_run(
    *,
    now=None,
    older_than_days: int | None = None,
    bodies_older_than_days: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    progress=None,
) -> dict:
    """Purge what retention allows; returns {step: rows} (rows that would go, with dry_run).

    `progress(step, total)` may return an object with update(n) and close(), like tqdm.
    """
    now = now or timezone.now()
    older_than_days = older_than_days or conf.get("RETENTION_DAYS")
    bodies_older_than_days = bodies_older_than_days or conf.get("RETENTION_BODY_DAYS")
    previous = MaintenanceRun.objects.filter(name=RUN_NAME).values_list("summary", flat=True).first() or {}
    bodies_since = _previous_body_cutoff(previous, bodies_older_than_days)
    plan = purge_plan(
        now=now,
        older_than_days=older_than_days,
        bodies_older_than_days=bodies_older_than_days,
        bodies_since=bodies_since,
    )
    done = {}
    for step in plan:
        total = step.queryset.count()
        done[step.name] = total if dry_run else _run_step(step, total, batch_size, progress)
    if not dry_run:
        summary = {
            "counts": done,
            "body_cutoff": (now - timedelta(days=bodies_older_than_days)).isoformat(),
            "body_days": bodies_older_than_days,
        }
        MaintenanceRun.objects.update_or_create(
            name=RUN_NAME, defaults={"finished_at": timezone.now(), "summary": summary}
        )
    return done


def _previous_body_cutoff(previous: dict, body_days: int):
    if previous.get("body_days") != body_days or not previous.get("body_cutoff"):
        return None  # a changed setting may leave bodies before the old cutoff: scan them all
    cutoff = parse_datetime(previous["body_cutoff"])
    return cutoff - timedelta(days=1) if cutoff else None  # a day's margin for late writes


def _run_step(step: Step, total: int, batch_size: int, progress) -> int:
    bar = progress(step, total) if progress else None
    done = 0
    try:
        while True:
            ids = list(step.queryset.order_by().values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            batch = step.queryset.model.objects.filter(pk__in=ids)
            changed = batch.update(response_body="") if step.blank_bodies else batch.delete()[0]
            done += changed
            if bar is not None:
                bar.update(changed)
            if len(ids) < batch_size:
                break
    finally:
        if bar is not None:
            bar.close()
    return done


def purge_due(now=None) -> bool:
    """True when the daily purge has not started within the last day."""
    now = now or timezone.now()
    started = MaintenanceRun.objects.filter(name=RUN_NAME).values_list("started_at", flat=True).first()
    return started is None or started <= now - EVERY


def _claim_daily_run(now) -> bool:
    """Mark the daily run started, unless another dispatcher just did (compare-and-set)."""
    MaintenanceRun.objects.get_or_create(name=RUN_NAME)
    stale = MaintenanceRun.objects.filter(
        name=RUN_NAME, started_at__isnull=True
    ) | MaintenanceRun.objects.filter(name=RUN_NAME, started_at__lte=now - EVERY)
    return stale.update(started_at=now) == 1


def purge_daily(now=None) -> dict | None:
    """The scheduled task: purge if no run started within the last day, else do nothing.

    Started every hour (monitoring.apps.DAILY_PURGE): an hourly look costs one SELECT, and a run that started a
    little late yesterday cannot make today's be skipped. The compare-and-set keeps it to one
    run a day when several clusters' schedulers, or a redelivered task, start it at once.
    """
    now = now or timezone.now()
    if not purge_due(now) or not _claim_daily_run(now):
        return None
    done = purge_run(now=now)
    logger.info("daily purge done: %s", done)
    return done
