"""Slow-host isolation (the per-origin concurrency limit): a healthy receiver's throughput and latency, with and
without another receiver that hangs for 30 s per request.

Starts everything itself on 127.0.0.1 (a throw-away PostgreSQL database, run_dispatcher, qcluster,
two sinks). Each condition runs on a fresh service:

- alone: only the healthy sink.
- beside a hanging host: `--slow` callbacks to a sink answering after `--slow-delay` s are due
  first, and keep that host busy for the whole measurement.
- unprotected (with --unprotected): the same, per-origin limit raised out of the way, to show what
  the limit prevents.

Measured for the healthy sink: throughput of a burst (`--fast` callbacks due at once: count over
first-due to last-recorded) and latency under a steady load (`--rate`/s for `--seconds` s:
created -> received by the sink, and due -> sent).

    python -m bench.isolation [--fast 2000] [--slow 200] [--slow-delay 30] [--rate 50] [--seconds 10]
"""

import argparse
import os
import platform
import time
from datetime import datetime

from bench.harness import Harness, percentile, prepared_harness

# Django, django_q and the project's modules are imported inside the functions that use them: they
# need django.setup(), which runs only after Harness.setup_django() has migrated this run's database.


def steady_load(h: Harness, *, rate: float, seconds: float, url: str) -> None:
    """Callbacks due now at `rate` per second, in 50 ms ticks."""
    from django.utils import timezone

    tick, owed, started = 0.05, 0.0, time.monotonic()
    while time.monotonic() - started < seconds:
        owed += rate * tick
        if int(owed):
            h.insert_tasks(url, [timezone.now()] * int(owed))
            owed -= int(owed)
        time.sleep(max(0.0, tick - ((time.monotonic() - started) % tick)))


def burst(h: Harness, *, count: int, url: str, timeout: float) -> dict:
    from django.db.models import Max
    from django.utils import timezone

    from callbacks.models import CallbackTask

    earlier = set(CallbackTask.objects.filter(url=url).values_list("id", flat=True))  # the warm-up's
    due = timezone.now()
    h.insert_tasks(url, [due] * count)
    finished = h.wait_final(count + len(earlier), timeout, url=url)
    tasks = CallbackTask.objects.filter(url=url).exclude(id__in=earlier)
    last = tasks.aggregate(last=Max("finished_at"))["last"]
    done = tasks.filter(status="succeeded").count()
    elapsed = (last - due).total_seconds() if last else timeout
    return {"rate": done / elapsed, "done": done, "finished": finished}


def latency(h: Harness, *, sink, rate: float, seconds: float, timeout: float) -> dict:
    from callbacks.models import CallbackTask, TaskExecution

    sink.reset()
    before = set(CallbackTask.objects.filter(url=sink.url).values_list("id", flat=True))
    steady_load(h, rate=rate, seconds=seconds, url=sink.url)
    tasks = CallbackTask.objects.filter(url=sink.url).exclude(id__in=before)
    count = tasks.count()
    finished = h.wait_final(count + len(before), timeout, url=sink.url)
    received = sink.state()["received"]
    created = {str(task_id): at for task_id, at in tasks.values_list("id", "created_at")}
    overhead = [(min(times) - created[t].timestamp()) * 1000 for t, times in received.items() if t in created]
    lags = [
        (started - due).total_seconds() * 1000
        for started, due in TaskExecution.objects.filter(task__in=tasks, attempt=1).values_list(
            "started_at", "task__due_at"
        )
    ]
    return {
        "count": count,
        "received": len(overhead),
        "p50": percentile(overhead, 50),
        "p99": percentile(overhead, 99),
        "lag_p50": percentile(lags, 50),
        "lag_p99": percentile(lags, 99),
        "finished": finished,
    }


def condition(h: Harness, args, *, slow: bool, protected: bool) -> dict:
    from django.utils import timezone

    # A short grace: stopping the workers must not wait for the hanging host's requests.
    env = {"CALLBACKS_WORKER_PROCESSES": args.processes, "CALLBACKS_SHUTDOWN_GRACE_SECONDS": 1}
    if not protected:
        env["CALLBACKS_MAX_CONCURRENCY_PER_ORIGIN"] = 100000
    fast = h.start_sink(record=True)
    h.start("dispatcher", "manage.py", "run_dispatcher", **env)
    h.start("workers", "manage.py", "qcluster", **env)
    h.insert_tasks(fast.url, [timezone.now()] * 200)  # warm-up: processes up, connections open
    if not h.wait_final(200, 120, url=fast.url):
        raise SystemExit(f"warm-up did not finish: see the logs in {h.var_dir}")
    slow_sink = None
    if slow:
        slow_sink = h.start_sink(delay=args.slow_delay)
        h.insert_tasks(slow_sink.url, [timezone.now()] * args.slow, total_timeout_seconds=args.slow_delay * 2)
        time.sleep(1.0)  # the hanging host has taken what it may
    result = {
        "burst": burst(h, count=args.fast, url=fast.url, timeout=args.timeout),
        "latency": latency(h, sink=fast, rate=args.rate, seconds=args.seconds, timeout=args.timeout),
    }
    if slow_sink is not None:
        state = slow_sink.state()
        result["slow_in_flight"] = state["max_in_flight"]
        result["slow_done"] = state["requests"]
    h.stop_all()
    return result


def row(name: str, r: dict) -> str:
    b, lat = r["burst"], r["latency"]
    burst_text = f"{b['rate']:,.0f}/s" + ("" if b["finished"] else f" ({b['done']} done, TIMED OUT)")
    latency_text = f"p50 {lat['p50']:,.0f} ms, p99 {lat['p99']:,.0f} ms" + (
        "" if lat["finished"] else f" ({lat['received']}/{lat['count']} received, TIMED OUT)"
    )
    lag_text = f"p50 {lat['lag_p50']:,.0f} ms, p99 {lat['lag_p99']:,.0f} ms"
    slow_text = (
        f"{r['slow_in_flight']} at once, {r['slow_done']} reached it" if "slow_in_flight" in r else "-"
    )
    return f"| {name} | {burst_text} | {latency_text} | {lag_text} | {slow_text} |"


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fast", type=int, default=2000, help="burst size to the healthy sink")
    parser.add_argument("--slow", type=int, default=200, help="callbacks to the hanging sink")
    parser.add_argument("--slow-delay", type=float, default=30.0, help="seconds the hanging sink waits")
    parser.add_argument(
        "--rate", type=float, default=50.0, help="steady load on the healthy sink, per second"
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0, help="longest wait for a measurement")
    parser.add_argument("--unprotected", action="store_true", help="also run without the per-origin limit")
    args = parser.parse_args()

    rows = []
    with prepared_harness("isolation") as h:
        rows.append(row("healthy host alone", condition(h, args, slow=False, protected=True)))
        rows.append(row("beside a hanging host", condition(h, args, slow=True, protected=True)))
        if args.unprotected:
            rows.append(
                row(
                    "beside a hanging host, no per-origin limit",
                    condition(h, args, slow=True, protected=False),
                )
            )
    print()
    print(
        f"# slow-host isolation — {datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, {os.cpu_count()} cores, "
        f"{args.processes} worker processes; hanging host: {args.slow} callbacks answered after "
        f"{args.slow_delay:g} s"
    )
    print()
    print(
        f"| healthy host's callbacks | burst of {args.fast:,} | created -> received at {args.rate:g}/s "
        "| due -> sent | hanging host |"
    )
    print("|---|---|---|---|---|")
    for line in rows:
        print(line)


if __name__ == "__main__":
    main()
