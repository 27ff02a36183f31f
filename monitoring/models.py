"""The monitoring app's tables: per-minute attempt roll-ups, process heartbeats, maintenance runs."""

from django.db import models
from django.utils import timezone as dj_timezone

from monitoring.buckets import BUCKET_FIELDS


class AttemptRollup(models.Model):
    """Attempts of one period with one (tenant, queue, host, outcome, status class), summed.

    Every attempt is added to its minute's row and to its hour's row (period_minutes 1 and 60).
    Stats read these instead of TaskExecution: a window uses hour rows for its whole hours and
    minute rows for the part before the first whole hour, so 24 hours cost a few tens of
    thousands of small rows, not ten million attempts. Latency keeps a fixed histogram
    (monitoring.buckets) whose counts add up across rows and processes.
    """

    period_minutes = models.PositiveSmallIntegerField(default=1)  # 1 or 60
    period_start = models.DateTimeField()
    tenant = models.ForeignKey("callbacks.Tenant", on_delete=models.CASCADE, related_name="+")
    queue = models.CharField(max_length=64)
    host = models.CharField(max_length=255)
    outcome = models.CharField(max_length=20)
    status_class = models.CharField(max_length=4)  # 1xx .. 5xx, or "none" without a response
    count = models.PositiveIntegerField(default=0)
    # Attempts that have a duration (an attempt refused before sending has none).
    timed_count = models.PositiveIntegerField(default=0)
    sum_ms = models.FloatField(default=0)
    max_ms = models.FloatField(default=0)
    locals().update({name: models.PositiveIntegerField(default=0) for name in BUCKET_FIELDS})

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "period_minutes",
                    "period_start",
                    "tenant",
                    "queue",
                    "host",
                    "outcome",
                    "status_class",
                ],
                name="rollup_unique_key",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "period_minutes", "period_start"], name="rollup_tenant_period_idx")
        ]

    def __str__(self):
        return f"{self.period_start:%Y-%m-%d %H:%M}+{self.period_minutes}m {self.host} {self.outcome}: {self.count}"


class Heartbeat(models.Model):
    """The last sign of life of one worker process or dispatcher; readiness reads these."""

    role = models.CharField(max_length=20)  # "worker" or "dispatcher"
    name = models.CharField(max_length=200)  # host:pid, unique per process
    seen_at = models.DateTimeField(default=dj_timezone.now)
    started_at = models.DateTimeField(default=dj_timezone.now)
    info = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["role", "name"], name="heartbeat_unique_process")]
        indexes = [models.Index(fields=["role", "seen_at"], name="heartbeat_role_seen_idx")]

    def __str__(self):
        return f"{self.role} {self.name}"


class MaintenanceRun(models.Model):
    """When a periodic job (the daily purge) last ran, shared by every dispatcher."""

    name = models.CharField(max_length=50, primary_key=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)

    def __str__(self):
        return self.name
