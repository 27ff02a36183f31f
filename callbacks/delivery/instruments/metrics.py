"""The engine's Prometheus metrics, shared by every process through prometheus_client's
multiprocess mode.

Worker and dispatcher processes update these; the web process's /metrics (monitoring.views)
sums the files of all processes, dead ones included, so counters survive worker recycling.
Gauges say how they combine: "livesum" adds up live processes only. Label sets stay bounded and
come from operators or the code, never from a tenant: queues an operator runs (any other queue is
"other", see queue_label), outcomes and status classes, never a task, tenant or host.
"""

from bisect import bisect_left
from collections import Counter as Tally

from prometheus_client import Counter, Gauge, Histogram

from callbacks import labels, queues


def queue_label(queue: str) -> str:
    """The `queue` label of a task's queue: its name if operators run it, else "other"."""
    return labels.queue_label(queue, queues.operator_queues())


def observe_many(histogram, amounts) -> None:
    """histogram.observe(amount) for each of `amounts`, writing each bucket touched and the sum once.
    In multiprocess mode every write takes a lock and rewrites the value in the process's file (two
    per observation); a worker recording a batch of attempts pays that per batch instead. The bucket
    an amount falls in is the first whose upper bound is at least the amount, as observe() picks it."""
    counts, total = Tally(), 0.0
    for amount in amounts:
        counts[bisect_left(histogram._upper_bounds, amount)] += 1
        total += amount
    if not counts:
        return
    histogram._sum.inc(total)
    for index, count in counts.items():
        histogram._buckets[index].inc(count)


# Seconds; the same spread as the roll-ups' millisecond buckets, coarser.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

# --- updated by the leading dispatcher and the workers -----------------------------------
CALLBACKS_IN_FLIGHT = Gauge(
    "callbacks_in_flight", "Callbacks being sent right now.", ["queue"], multiprocess_mode="livesum"
)
DISPATCH_LAG_SECONDS = Histogram(
    "callbacks_dispatch_lag_seconds",
    "From when a task could first be sent (its due time; its creation when registered already due) to its "
    "request being sent.",
    buckets=LAG_BUCKETS,
)
DISPATCHED_TOTAL = Counter("callbacks_dispatched_total", "Tasks handed to the workers.", ["queue"])

# --- updated by instruments.accounting and instruments.heartbeats ----------------------
ATTEMPTS_TOTAL = Counter(
    "callbacks_attempts_total", "Delivery attempts.", ["queue", "outcome", "status_class"]
)
ATTEMPT_DURATION_SECONDS = Histogram(
    "callbacks_attempt_duration_seconds", "Duration of an attempt.", ["queue"], buckets=LATENCY_BUCKETS
)
TASKS_FINISHED_TOTAL = Counter(
    "callbacks_tasks_finished_total", "Tasks that reached a final status.", ["queue", "status"]
)
DEAD_LETTERS_TOTAL = Counter("callbacks_dead_letters_total", "Tasks that ran out of retries.", ["queue"])
POOL_CONNECTIONS = Gauge(
    "callbacks_pool_connections",
    "HTTP connections of the workers' pools, by state (active: in use, idle: kept alive) and protocol "
    '("1.1", "2"; an HTTP/2 connection is active while it carries a stream).',
    ["state", "protocol"],
    multiprocess_mode="livesum",
)
REQUESTS_IN_FLIGHT = Gauge(
    "callbacks_requests_in_flight",
    "Requests on the wire, by protocol: HTTP/1.1 connections in use, HTTP/2 streams open.",
    ["protocol"],
    multiprocess_mode="livesum",
)
POOL_HOSTS = Gauge("callbacks_pool_hosts", "Per-host pools kept by the workers.", multiprocess_mode="livesum")
# Counted in the process that records the tipping attempt; /metrics sums every process's files.
# The callbacks_breakers gauge (monitoring.collectors) reads the current states at scrape time.
BREAKER_OPENINGS_TOTAL = Counter(
    "callbacks_breaker_openings_total",
    "Times a circuit breaker opened (re-openings after a failed probe too).",
)
