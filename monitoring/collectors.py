"""Metrics read from the database when /metrics is scraped, in the web process only.

Queue depth, the wait of the oldest due task, breaker states and live processes describe the
whole installation rather than one process, so they are counted at scrape time instead of
being kept by any one process.
"""

import logging

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from callbacks import selectors
from callbacks.domain.vocabulary import UNFINISHED_STATUSES
from callbacks.models import BreakerState, CallbackTask, CircuitBreaker
from monitoring import health, heartbeats

logger = logging.getLogger(__name__)

# Final statuses are left out: counting every task ever delivered at each scrape grows without end.


class DatabaseCollector:
    def collect(self):
        try:
            yield from self._collect()
        except Exception:  # a scrape still returns the process metrics when the database is down
            logger.exception("reading metrics from the database failed")

    def _collect(self):
        depth = GaugeMetricFamily(
            "callbacks_queue_depth", "Tasks not yet final, by queue and status.", labels=["queue", "status"]
        )
        rows = (
            CallbackTask.objects.filter(status__in=UNFINISHED_STATUSES)
            .values("queue", "status")
            .annotate(n=Count("id"))
            .order_by()
        )
        for row in rows:
            depth.add_metric([row["queue"], row["status"]], row["n"])
        yield depth

        lag = health.oldest_due_lag_seconds()
        yield GaugeMetricFamily(
            "callbacks_oldest_due_seconds",
            "How long the oldest due, unclaimed task has waited (0 when none waits).",
            value=lag or 0.0,
        )

        breakers = GaugeMetricFamily("callbacks_breakers", "Circuit breakers by state.", labels=["state"])
        counts = dict(CircuitBreaker.objects.values_list("state").annotate(n=Count("id")).order_by())
        for state in BreakerState.values:
            breakers.add_metric([state], counts.get(state, 0))
        yield breakers

        processes = GaugeMetricFamily(
            "callbacks_processes_alive", "Processes with a recent heartbeat.", labels=["role"]
        )
        now = timezone.now()
        for role in (heartbeats.WORKER, heartbeats.DISPATCHER):
            processes.add_metric([role], heartbeats.alive(role=role, now=now).count())
        yield processes

        yield GaugeMetricFamily(
            "callbacks_client_certificates_expiring",
            "Active tenants' client certificates expiring within 14 days (or expired).",
            value=len(selectors.client_certificates_expiring(now=now)),
        )
