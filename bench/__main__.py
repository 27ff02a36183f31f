"""`make bench`: the whole service against a fast local receiver, beside its references.

Starts everything itself on 127.0.0.1: a fresh PostgreSQL database (on DATABASE_URL's server,
default 127.0.0.1:5432), the sink (bench/sink.py), run_dispatcher and qcluster. The scenarios
run one after another in one invocation, each beside its reference, so ratios compare like
with like on a shared, noisy machine (bench/scenarios.py, bench/lag.py):

- throughput: callbacks due now through the whole pipeline, every attempt recorded; beside it
  bare requests.Session loops (the ceiling) and the naive design (task per callback);
- inflight: a receiver answering after 3 s and 1 s; callbacks in flight at once, memory (PSS),
  run_dispatcher + qcluster beside qcluster --dispatcher;
- latency: created-to-received at half the measured capacity;
- cpu: CPU of dispatcher + cluster at 10 % of the measured capacity ("normal load");
- lag: callbacks due evenly over a minute at half capacity; due-to-sent lag;
- history: throughput with millions of past attempts in the table against an empty one;
- flood: one origin with a large backlog at the default per-origin limit (claims skipping it);
- fairness: one tenant's 100,000 urgent callbacks to a slow receiver, then to 64, beside another's steady
  50/s to a fast one, at the defaults; the second tenant's lag (bench/fairness.py);
- origins: the defaults, one origin and 64, beside the bare loop and the Celery peer (bench/origins.py);
- http2: HTTP/2 against HTTP/1.1 to the same TLS receiver, one origin and 16, callbacks/s and CPU per
  callback (bench/http2.py);
- idle: web + dispatcher + cluster with nothing due, CPU per process and PostgreSQL's, on the ORM
  broker and on Redis, and the wake-up latency from idle (bench/idle.py);
- search: task search on 1,000,000 tasks, each kind of term, the operator's list and one tenant's, with
  the update cost of the index design not taken beside it (bench/search.py).

    python -m bench [--count 20000] [--scenarios throughput,inflight,latency,cpu,lag,history]
"""

import argparse
import os
import platform
import sys
from datetime import datetime

from bench import fairness, http2, idle, lag, origins, scenarios, search
from bench.harness import ROOT, prepared_harness, print_table

SCENARIOS = [
    "throughput",
    "inflight",
    "latency",
    "cpu",
    "lag",
    "history",
    "flood",
    "fairness",
    "origins",
    "http2",
    "idle",
    "search",
]


def run(args) -> list:
    functions = {
        "throughput": scenarios.throughput,
        "inflight": scenarios.in_flight,
        "latency": scenarios.latency,
        "cpu": scenarios.cpu,
        "lag": lag.lag,
        "history": scenarios.history,
        "flood": scenarios.flood,
        "fairness": fairness.fairness,
        "origins": origins.origins,
        "http2": http2.http2,
        "idle": idle.idle,
        "search": search.search,
    }
    rows = []
    with prepared_harness("bench") as h:
        for name in args.scenarios.split(","):
            name = name.strip()
            if name not in functions:
                sys.exit(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
            print(f"... {name}", file=sys.stderr, flush=True)
            rows.extend(functions[name](h, args))
    return rows


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--count", type=int, default=20000, help="callbacks of the throughput scenario")
    parser.add_argument("--processes", type=int, default=2, help="django-q2 worker processes")
    parser.add_argument(
        "--naive-count", type=int, default=600, help="callbacks of the naive design (it is slow)"
    )
    parser.add_argument("--inflight", type=int, default=1000, help="callbacks meant to be in flight at once")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of the latency and CPU runs")
    parser.add_argument("--lag-seconds", type=float, default=60.0, help="the lag scenario's window")
    parser.add_argument("--rate", type=float, default=0, help="capacity to assume if throughput does not run")
    parser.add_argument(
        "--history-rows", type=int, default=5_000_000, help="past attempts of the history scenario"
    )
    parser.add_argument("--history-count", type=int, default=10000, help="callbacks per history run")
    parser.add_argument(
        "--flood-count", type=int, default=50000, help="backlog of the one-origin flood scenario"
    )
    origins.add_arguments(parser)
    fairness.add_arguments(parser)
    search.add_arguments(parser)
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="the idle scenario's window")
    parser.add_argument("--wakeups", type=int, default=5, help="wake-up samples per broker (idle scenario)")
    parser.add_argument("--brokers", default="orm,redis", help="brokers of the idle scenario")
    args = parser.parse_args()

    rows = run(args)
    print_table(
        rows,
        title=f"make bench — {datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, PostgreSQL, ORM broker",
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
