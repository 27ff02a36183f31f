"""The fairness scenario: one tenant floods, another's callbacks still go out on time.

One tenant has `--fairness-count` callbacks (100,000 by default) due at once, priority 9, to slow
receivers (they answer after `--fairness-delay` s); meanwhile another tenant sends at a steady
`--fairness-rate` per second (50) to a fast one, for `--seconds`. Reported: the second tenant's
due-to-sent lag (first attempts' started_at minus due_at), p50 and p99. Goal: p99 under 1 s,
whatever the first tenant's volume, priority or receivers (the outstanding budget and each origin's
slots are shared fairly: callbacks/delivery/claim/limits.py; so are a worker's sender threads:
callbacks/delivery/worker.py).

Two rows, both at the defaults a user runs (nothing lifted): the flood to one slow origin, where the
per-origin limit (20) already keeps the flooder small, and the flood spread over
`--fairness-origins` slow origins (64), where the per-origin limit does not protect the other
tenant and only the tenant shares do.

As a scenario of `make bench` it is `fairness(h, args)`; on its own:

    python -m bench.fairness [--fairness-count 100000] [--fairness-rate 50] [--seconds 20]
"""

import argparse
import sys

from bench.harness import ROOT, Harness, percentile, prepared_harness, print_table
from bench.isolation import steady_load
from bench.origins import start_at_defaults
from bench.scenarios import clear_run, warm_up

# Django, django_q and the project's modules are imported inside the functions that use them: they
# need django.setup(), which runs only after Harness.setup_django() has migrated this run's database.

GOAL = "the steady tenant's lag p99 < 1 s"


def fairness_run(
    h: Harness,
    *,
    flood: int,
    delay: float,
    rate: float,
    seconds: float,
    processes: int,
    origins: int = 1,
    **env,
) -> dict:
    from django.utils import timezone

    from callbacks.models import CallbackTask, TaskExecution
    from callbacks.services.tenants import tenant_create

    slow, fast = h.start_sink(delay=delay, origins=origins), h.start_sink()
    start_at_defaults(h, processes, CALLBACKS_SHUTDOWN_GRACE_SECONDS=1, **env)
    warm_up(h, fast.url)
    flooder = tenant_create(name=f"{h.name}-flooder-{origins}").tenant
    for start in range(0, flood, 20000):  # in parts: one transaction of 100,000 rows holds the table long
        count = min(20000, flood - start)
        h.insert_tasks(
            slow.urls, [timezone.now()] * count, tenant=flooder, priority=9, total_timeout_seconds=delay * 4
        )
    steady_load(h, rate=rate, seconds=seconds, url=fast.url)  # the run's own tenant
    count = CallbackTask.objects.filter(url=fast.url).count()
    finished = h.wait_final(count, 120, url=fast.url)
    lags = [
        (started - due).total_seconds() * 1000
        for started, due in TaskExecution.objects.filter(task__url=fast.url, attempt=1).values_list(
            "started_at", "task__due_at"
        )
    ]
    h.stop_all()
    clear_run(fast.url)
    for url in slow.urls:
        clear_run(url)
    return {
        "count": count,
        "sent": len(lags),
        "finished": finished,
        "p50": percentile(lags, 50),
        "p99": percentile(lags, 99),
    }


def fairness(h: Harness, args) -> list:
    rows = []
    for origins in (1, args.fairness_origins):
        r = fairness_run(
            h,
            flood=args.fairness_count,
            delay=args.fairness_delay,
            rate=args.fairness_rate,
            seconds=args.seconds,
            processes=args.processes,
            origins=origins,
        )
        receivers = "one receiver" if origins == 1 else f"{origins} receivers"
        rows.append(
            (
                f"fairness, defaults: {args.fairness_count:,} due at priority 9 to {receivers} answering in "
                f"{args.fairness_delay:g} s, beside another tenant at {args.fairness_rate:g}/s to a fast one",
                f"lag p50 {r['p50']:,.0f} ms, p99 {r['p99']:,.0f} ms",
                f"{r['sent']}/{r['count']} sent" + ("" if r["finished"] else ", TIMED OUT"),
                "",
                GOAL,
            )
        )
    return rows


def add_arguments(parser) -> None:
    parser.add_argument("--fairness-count", type=int, default=100000, help="the flooding tenant's callbacks")
    parser.add_argument("--fairness-delay", type=float, default=1.0, help="the slow receiver's answer, s")
    parser.add_argument("--fairness-rate", type=float, default=50.0, help="the steady tenant's rate, per s")
    parser.add_argument(
        "--fairness-origins", type=int, default=64, help="the slow origins of the spread flood's row"
    )


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    with prepared_harness("fairness") as h:
        rows = fairness(h, args)
    print_table(rows, title="fairness")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
