"""Timing of the stats query over a day of roll-ups equivalent to ten million attempts:
the stats API and the dashboard read these roll-ups, so this is how long they take over a busy day.

Not a test: it fills the roll-up table of the database in DATABASE_URL (PostgreSQL) with a day of
generated history for a few bench tenants, times monitoring.selectors.stats over 24 hours, and
deletes what it generated (unless --keep).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tc_bench python -m bench.rollup_query
        [--attempts 10000000] [--tenants 10] [--hosts 10] [--runs 7]

Shape of the history: per minute, every (tenant, queue, host) gets its share of attempts as a 2xx
success row, and some minutes add error rows (5xx, 4xx, timeout, connection) in proportion to
their rates, as a busy installation's recorders would write them.
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import django

from taskcenter.bootstrap import prepare

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskcenter.settings")

# (outcome, status class, share of attempts, latency shape: (first bucket, weights))
ERROR_MIX = [
    ("http_5xx", "5xx", 0.02, (9, [1, 3, 5, 3, 1])),
    ("http_4xx", "4xx", 0.01, (8, [2, 4, 2])),
    ("timeout", "none", 0.005, (22, [1, 2, 4])),
    ("connection", "none", 0.005, (0, [4, 3, 2, 1])),
]
SUCCESS_SHAPE = (6, [1, 3, 6, 10, 14, 12, 8, 5, 3, 2, 1])  # mostly 15..300 ms, a tail to 1.5 s


def spread(count, shape, bucket_count):
    """`count` attempts spread over the buckets in the shape's proportions, summing exactly."""
    first, weights = shape
    buckets = [0] * bucket_count
    total = sum(weights)
    placed = 0
    for offset, weight in enumerate(weights):
        share = count * weight // total
        buckets[first + offset] = share
        placed += share
    buckets[first + weights.index(max(weights))] += count - placed
    return buckets


def generate(*, tenants, queues, hosts, attempts, end, rng, bucket_count, bounds):
    minutes = 24 * 60
    combos = [(t, q, h) for t in tenants for q in queues for h in hosts[t]]
    per_minute, extra = divmod(attempts, minutes)
    start = end - timedelta(minutes=minutes)
    for index in range(minutes):
        minute = start + timedelta(minutes=index)
        minute_total = per_minute + (1 if index < extra else 0)
        base, rest = divmod(minute_total, len(combos))
        for position, (tenant_id, queue, host) in enumerate(combos):
            count = base + (1 if position < rest else 0)
            left = count
            for outcome, status_class, rate, shape in ERROR_MIX:
                expected = count * rate
                errors = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
                errors = min(errors, left)
                if errors:
                    left -= errors
                    yield _row(
                        minute,
                        tenant_id,
                        queue,
                        host,
                        outcome,
                        status_class,
                        errors,
                        shape,
                        bucket_count,
                        bounds,
                    )
            if left:
                yield _row(
                    minute,
                    tenant_id,
                    queue,
                    host,
                    "success",
                    "2xx",
                    left,
                    SUCCESS_SHAPE,
                    bucket_count,
                    bounds,
                )


def _row(minute, tenant_id, queue, host, outcome, status_class, count, shape, bucket_count, bounds):
    buckets = spread(count, shape, bucket_count)
    top = max(i for i, n in enumerate(buckets) if n)
    upper = bounds[top] if top < len(bounds) else bounds[-1] * 1.5
    sum_ms = sum(n * (bounds[i] if i < len(bounds) else upper) * 0.7 for i, n in enumerate(buckets))
    return (
        minute,
        tenant_id,
        queue,
        host,
        outcome,
        status_class,
        count,
        count,
        sum_ms,
        float(upper),
        *buckets,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=10_000_000)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--hosts", type=int, default=10, help="target hosts per tenant")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the generated rows and tenants")
    args = parser.parse_args()

    prepare()  # as manage.py does, before the settings load
    django.setup()
    # Imported here, after django.setup(): the models need the app registry.
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from callbacks.buckets import BOUNDS_MS, BUCKET_COUNT, BUCKET_FIELDS
    from callbacks.models import AttemptRollup, Tenant
    from monitoring import selectors

    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database (the figure to report is PostgreSQL's).")
    call_command("migrate", verbosity=0)
    rng = random.Random(42)
    tenants = [Tenant.objects.create(name=f"bench-rollup-{os.getpid()}-{i}") for i in range(args.tenants)]
    try:
        hosts = {
            t.id: [f"api{j}.tenant{i}.example" for j in range(args.hosts)] for i, t in enumerate(tenants)
        }
        end = selectors.floor_minute(timezone.now())
        columns = [
            "period_minutes", "period_start", "tenant_id", "queue", "host", "outcome", "status_class",
            "count", "timed_count", "sum_ms", "max_ms", *BUCKET_FIELDS,
        ]  # fmt: skip
        started = time.perf_counter()
        rows = 0
        with connection.cursor() as cursor:
            table = AttemptRollup._meta.db_table
            with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in generate(
                    tenants=[t.id for t in tenants],
                    queues=["default", "billing"],
                    hosts=hosts,
                    attempts=args.attempts,
                    end=end,
                    rng=rng,
                    bucket_count=BUCKET_COUNT,
                    bounds=BOUNDS_MS,
                ):
                    copy.write_row((1, *row))
                    rows += 1
            # The hour rows the recorder writes beside the minute rows, summed from them here.
            sums = ", ".join(f"SUM({c})" for c in ["count", "timed_count", "sum_ms", *BUCKET_FIELDS])
            cursor.execute(
                f"INSERT INTO {table} (period_minutes, period_start, tenant_id, queue, host, outcome, status_class, "
                f"count, timed_count, sum_ms, {', '.join(BUCKET_FIELDS)}, max_ms) "
                f"SELECT 60, date_trunc('hour', period_start), tenant_id, queue, host, outcome, status_class, "
                f"{sums}, MAX(max_ms) FROM {table} WHERE period_minutes = 1 AND tenant_id = ANY(%s) "
                f"GROUP BY 2, 3, 4, 5, 6, 7",
                [[t.id for t in tenants]],
            )
            hour_rows = cursor.rowcount
            cursor.execute(f"ANALYZE {table}")
        print(
            f"generated {rows:,} minute and {hour_rows:,} hour roll-up rows for {args.attempts:,} attempts "
            f"in {time.perf_counter() - started:.1f} s"
        )

        now = end + timedelta(seconds=30)
        window = timedelta(hours=24)
        cases = {
            "stats 24h, all tenants (callback_stats)": lambda: selectors.stats(window=window, now=now),
            "stats 24h, one tenant (GET /api/v1/stats/)": lambda: selectors.stats(
                window=window, tenant=tenants[0], now=now
            ),
            "stats 24h, one tenant and queue": lambda: selectors.stats(
                window=window, tenant=tenants[0], queue="billing", now=now
            ),
            "timeseries 24h by hour, all tenants": lambda: selectors.timeseries(
                window=window, step=timedelta(hours=1), now=now
            ),
            "timeseries 24h by 15 min, all tenants": lambda: selectors.timeseries(
                window=window, step=timedelta(minutes=15), now=now
            ),
            "stats 7d window (1 day of history), all": lambda: selectors.stats(
                window=timedelta(days=7), now=now
            ),
        }
        total = selectors.stats(window=window, now=now)
        print(f"24h stats see {total['count']:,} attempts, p50 {total['latency_ms']['p50']} ms, "
              f"p99 {total['latency_ms']['p99']} ms, success {total['success_rate']}")  # fmt: skip
        for name, run in cases.items():
            timings = []
            for _ in range(args.runs):
                began = time.perf_counter()
                run()
                timings.append((time.perf_counter() - began) * 1000)
            print(f"{name:<45} median {statistics.median(timings):7.1f} ms   min {min(timings):7.1f} ms   "
                  f"max {max(timings):7.1f} ms  ({args.runs} runs)")  # fmt: skip
    finally:
        if not args.keep:
            AttemptRollup.objects.filter(tenant__in=tenants).delete()
            Tenant.objects.filter(pk__in=[t.pk for t in tenants]).delete()


if __name__ == "__main__":
    main()
