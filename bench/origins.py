"""The `origins` scenario: the service at its defaults, beside the bare loop and the Celery peer.

The other pipeline scenarios lift the per-origin concurrency limit out of the way (the sink is one
origin, scenarios.PIPELINE_ENV). A figure measured so describes another product than the one a
user installs, so this scenario measures, side by side in one run:

- the bare requests.Session loops: one by itself (the reference the goals name: what one Session
  sends to the receiver), and one per worker process (the machine's ceiling, shown beside it);
- one receiver origin at the service's defaults (20 in flight per origin, 20 pooled connections
  per host), with a smaller and a larger backlog: a business system calling back its own endpoint,
  the ordinary case;
- the same callbacks spread over 64 origins at the defaults (one sink listening on 64 ports), where
  the per-origin limit is not what binds;
- one origin with the limit lifted, as the throughput scenario runs it;
- the Celery peer (bench/celery_peer/), the design a Django team would build instead, one origin,
  no limits at all.
"""

import os

from bench.celery_peer.run import celery_peer_run
from bench.harness import Harness
from bench.scenarios import PIPELINE_ENV, ceiling_run, clear_run, warm_up

SMALL_COUNT = 5000
MANY_ORIGINS = 64


def add_arguments(parser) -> None:
    parser.add_argument(
        "--celery-concurrency",
        type=int,
        default=os.cpu_count(),
        help="prefork processes of the Celery peer (Celery's own default: the number of cores)",
    )


def start_at_defaults(h: Harness, processes: int, **env) -> None:
    """run_dispatcher and qcluster with nothing set but the worker processes (and `env`)."""
    h.start("dispatcher", "manage.py", "run_dispatcher", CALLBACKS_WORKER_PROCESSES=processes, **env)
    h.start("workers", "manage.py", "qcluster", CALLBACKS_WORKER_PROCESSES=processes, **env)


def delivery_run(h: Harness, *, count: int, processes: int, origins: int = 1, **env) -> dict:
    """`count` callbacks due now over `origins` receiver origins, inserted in one transaction while
    the service runs; the rate counts from their commit to the last one finished."""
    from django.db.models import Max
    from django.utils import timezone

    from callbacks.models import CallbackTask

    sink = h.start_sink(origins=origins)
    start_at_defaults(h, processes, **env)
    warm_up(h, sink.url)
    h.insert_tasks(sink.urls, [timezone.now()] * count)
    inserted = timezone.now()
    finished = h.wait_final(count, 1800, url=sink.urls)
    tasks = CallbackTask.objects.filter(url__in=sink.urls)
    last = tasks.aggregate(last=Max("finished_at"))["last"]
    succeeded = tasks.filter(status="succeeded").count()
    h.stop_all()
    for url in sink.urls:
        clear_run(url)
    return {"rate": count / (last - inserted).total_seconds(), "succeeded": succeeded, "finished": finished}


def origins(h: Harness, args) -> list:
    from django.conf import settings

    limit = settings.CALLBACKS["MAX_CONCURRENCY_PER_ORIGIN"]
    pool = settings.CALLBACKS["POOL_MAXSIZE_PER_HOST"]
    count, processes = args.count, args.processes
    # The machine is shared and its speed drifts over the minutes this takes: the ceiling is
    # measured first and last, and the rows compare with the mean of the two.
    bare_first = ceiling_run(h, count=count, processes=processes)
    # One loop, one process: what one `requests.Session` sends to the receiver by itself.
    single_first = ceiling_run(h, count=count // 2, processes=1)
    one_small = delivery_run(h, count=SMALL_COUNT, processes=processes)
    one = delivery_run(h, count=count, processes=processes)
    many = delivery_run(h, count=count, processes=processes, origins=MANY_ORIGINS)
    lifted = delivery_run(h, count=count, processes=processes, **PIPELINE_ENV)
    peer = celery_peer_run(h, count=count, concurrency=args.celery_concurrency)
    single_last = ceiling_run(h, count=count // 2, processes=1)
    bare_last = ceiling_run(h, count=count, processes=processes)
    bare = (bare_first + bare_last) / 2
    single = (single_first + single_last) / 2

    def done(run: dict, of: int) -> str:
        return f"{run['succeeded']:,}/{of:,} succeeded" + ("" if run["finished"] else " (TIMED OUT)")

    defaults = (
        f"defaults ({limit} in flight per origin, {pool} connections per host), {processes} worker processes"
    )
    bare_ref = f"bare requests.Session loop x{processes}: {bare:,.0f} req/s"
    single_ref = f"one bare requests.Session loop: {single:,.0f} req/s"

    def both_loops(run: dict) -> str:
        # The machine's ceiling: a loop per worker process, as many as the service runs.
        return f"{run['rate'] / bare:.2f} of the bare loop x{processes} ({bare:,.0f} req/s)"

    return [
        (
            f"bare requests.Session loop x{processes}, {count:,} requests, first and last",
            f"{bare:,.0f} req/s",
            f"first {bare_first:,.0f} req/s, last {bare_last:,.0f} req/s",
            f"{bare_last / bare_first:.2f}",
            "(the ceiling; drift between first and last)",
        ),
        (
            f"bare requests.Session loop x1, {count // 2:,} requests, first and last",
            f"{single:,.0f} req/s",
            f"first {single_first:,.0f} req/s, last {single_last:,.0f} req/s",
            f"{single_last / single_first:.2f}",
            "(one Session by itself)",
        ),
        (
            f"one origin at the {defaults}, {SMALL_COUNT:,} due now",
            f"{one_small['rate']:,.0f} callbacks/s",
            f"{single_ref}; {both_loops(one_small)}; {done(one_small, SMALL_COUNT)}",
            f"{one_small['rate'] / single:.2f}",
            ">= 0.7 of one loop (aim 1.0)",
        ),
        (
            f"one origin at the defaults, {count:,} due now",
            f"{one['rate']:,.0f} callbacks/s",
            f"{single_ref}; {both_loops(one)}; {done(one, count)}",
            f"{one['rate'] / single:.2f}",
            ">= 0.7 of one loop (aim 1.0)",
        ),
        (
            f"one origin at the defaults against {MANY_ORIGINS} origins, {count:,} due now",
            f"{one['rate']:,.0f} callbacks/s",
            f"{MANY_ORIGINS} origins at the defaults: {many['rate']:,.0f} callbacks/s; {done(many, count)}",
            f"{one['rate'] / many['rate']:.2f}",
            ">= 0.9",
        ),
        (
            f"{MANY_ORIGINS} origins at the defaults, {count:,} due now",
            f"{many['rate']:,.0f} callbacks/s",
            f"{single_ref}; {both_loops(many)}",
            f"{many['rate'] / single:.2f}",
            ">= 0.7 of one loop (aim 1.0)",
        ),
        (
            f"one origin, limit lifted ({PIPELINE_ENV['CALLBACKS_MAX_CONCURRENCY_PER_ORIGIN']} in flight, "
            f"{PIPELINE_ENV['CALLBACKS_POOL_MAXSIZE_PER_HOST']} connections), {count:,} due now",
            f"{lifted['rate']:,.0f} callbacks/s",
            f"{bare_ref}; {done(lifted, count)}; at the defaults: {one['rate']:,.0f} callbacks/s",
            f"{lifted['rate'] / bare:.2f}",
            "(another product: the default lifted)",
        ),
        (
            f"one origin at the defaults against the Celery peer, {count:,} due now",
            f"{one['rate']:,.0f} callbacks/s",
            f"Celery on Redis, task per callback, prefork x{args.celery_concurrency}, one origin, no limits: "
            f"{peer['rate']:,.0f} callbacks/s ({peer['succeeded']:,}/{count:,} succeeded; "
            f"limit lifted: {lifted['rate'] / peer['rate']:.1f}x)",
            f"{one['rate'] / peer['rate']:.1f}x",
            ">= 4x",
        ),
    ]
