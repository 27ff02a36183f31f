"""Metrics read from the database when /metrics is scraped, in the web process only.

Queue depth, the wait of the oldest due task, breaker states and live processes describe the
whole installation rather than one process, so they are counted at scrape time instead of
being kept by any one process.
"""

import logging

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from callbacks import labels, queues, selectors
from callbacks.domain.vocabulary import UNFINISHED_STATUSES
from callbacks.models import BreakerState, CircuitBreaker
from callbacks.services.breakers import breaker_concurrency
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
            "callbacks_queue_depth",
            "Tasks not yet final, by queue and status; 0 for every known queue with none.",
            labels=["queue", "status"],
        )
        # Every queue operators run and every status, 0 included: an alert on depth must not read
        # "absent" as "fine". Queues no operator runs are summed under "other": a tenant's queue names
        # are neither new series at will nor shown on this unauthenticated page.
        known = queues.operator_queues()
        summed = {(name, status): 0 for name in known for status in UNFINISHED_STATUSES}
        for queue in queues.queue_list():
            label = labels.queue_label(queue["name"], known)
            for status, count in queue["counts"].items():
                summed[(label, status)] = summed.get((label, status), 0) + count
        for (queue, status), count in sorted(summed.items()):
            depth.add_metric([queue, status], count)
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

        slowed = GaugeMetricFamily(
            "callbacks_origin_concurrency_limit",
            "Callbacks in flight allowed to an origin slowed down because it answered 429 or 503 "
            "(origins at the configured limit are left out).",
            labels=["origin"],
        )
        for breaker in CircuitBreaker.objects.filter(concurrency_limit__isnull=False).only(
            "origin", "concurrency_limit"
        ):
            slowed.add_metric([breaker.origin], breaker_concurrency(breaker))
        yield slowed

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
