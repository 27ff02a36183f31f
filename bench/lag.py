"""The lag scenario: how late delayed and scheduled callbacks go out when they are due over a minute.

Callbacks due evenly over a window (60 s by default), all inserted before the window opens, at
about half the measured capacity: the due-to-sent lag (TaskExecution.started_at of the first
attempt minus the task's run_at) at p50/p90/p99/max, at the defaults (one origin, 20 in flight) and
with the per-origin limit lifted. Goal: p50 under 50 ms, p99 under 250 ms.

As a scenario of `make bench` it is `lag(h, args)` (rows like bench.scenarios'); on its own:

    python -m bench.lag [--rate 200 | --count 3000] [--seconds 60] [--processes 2]

Without --rate it measures the capacity first (bench.scenarios.pipeline_run, --count callbacks due
now) and runs at half of it.
"""

import argparse
import sys
from datetime import timedelta

from bench.harness import ROOT, Harness, percentile, prepared_harness, print_table
from bench.scenarios import clear_run, pipeline_run, start_service, warm_up

# Django, django_q and the project's modules are imported inside the functions that use them: they
# need django.setup(), which runs only after Harness.setup_django() has migrated this run's database.

GOAL = "p50 < 50 ms, p99 < 250 ms"


def lag_run(h: Harness, *, rate: float, seconds: float, processes: int, defaults: bool = False) -> dict:
    """With `defaults`, at the service's own limits (one origin: 20 in flight); else lifted."""
    from django.utils import timezone

    from callbacks.models import TaskExecution

    count = max(1, round(rate * seconds))
    sink = h.start_sink()
    start_service(h, processes, defaults=defaults)
    warm_up(h, sink.url)
    # The window opens once the insert is surely over, so inserting does not load the dispatcher.
    opens = timezone.now() + timedelta(seconds=max(5.0, count / 5000))
    step = seconds / count
    h.insert_tasks(sink.url, [opens + timedelta(seconds=n * step) for n in range(count)])
    finished = h.wait_final(count, seconds + 600, url=sink.url)
    lags = [
        (started - due).total_seconds() * 1000
        for started, due in TaskExecution.objects.filter(task__url=sink.url, attempt=1).values_list(
            "started_at", "task__run_at"
        )
    ]
    h.stop_all()
    clear_run(sink.url)
    return {
        "count": count,
        "sent": len(lags),
        "early": sum(lag < 0 for lag in lags),
        "finished": finished,
        **{f"p{q}": percentile(lags, q) for q in (50, 90, 99)},
        "max": max(lags, default=float("nan")),
    }


def lag(h: Harness, args) -> list:
    """Rows for the report: (scenario, ours, reference, figure, goal)."""
    capacity = getattr(h, "capacity", None)
    rate = capacity / 2 if capacity else (args.rate or 200)
    seconds = getattr(args, "lag_seconds", 60.0)
    rows = []
    for defaults, what in ((True, "at the defaults"), (False, "limit lifted")):
        result = lag_run(h, rate=rate, seconds=seconds, processes=args.processes, defaults=defaults)
        note = f"{result['sent']:,}/{result['count']:,} sent, {result['early']} before their time" + (
            "" if result["finished"] else " (TIMED OUT)"
        )
        rows.append(
            (
                f"lag, {what}: {result['count']:,} callbacks due evenly over {seconds:.0f} s ({rate:,.0f}/s)",
                f"p50 {result['p50']:,.0f} ms, p90 {result['p90']:,.0f} ms, p99 {result['p99']:,.0f} ms, "
                f"max {result['max']:,.0f} ms",
                note,
                "due -> first attempt started",
                GOAL,
            )
        )
    return rows


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rate", type=float, default=0, help="callbacks/s; default: half the measured capacity"
    )
    parser.add_argument("--count", type=int, default=3000, help="callbacks of the capacity measurement")
    parser.add_argument("--seconds", dest="lag_seconds", type=float, default=60.0, help="the window")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    rows = []
    with prepared_harness("lag") as h:
        if not args.rate:
            measured = pipeline_run(h, count=args.count, processes=args.processes)
            h.capacity = measured["rate"]
            rows.append(
                (
                    f"capacity: {args.count:,} due now",
                    f"{measured['rate']:,.0f} callbacks/s",
                    f"burst lag p50 {measured['lag_p50']:,.0f} ms, p99 {measured['lag_p99']:,.0f} ms",
                    "",
                    "",
                )
            )
        rows.extend(lag(h, args))
    print_table(rows)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
