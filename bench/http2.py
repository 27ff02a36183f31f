"""The `http2` scenario: HTTP/2 against HTTP/1.1 to the same TLS receiver, one origin and many.

One TLS receiver process (bench/tls_sink.py, hypercorn offering h2 and http/1.1 through ALPN) per
run; the service at its defaults but for CALLBACKS_HTTP2, on and off, run after run in one
invocation so the machine's drift touches both alike. For each: callbacks per second through the
whole pipeline, and the CPU seconds the dispatcher and the cluster spent per 1,000 callbacks
(their own and their reaped children's), which is where the pure-Python HTTP/2 framing shows.
The receiver's CPU is not counted: it is the same server for both.
"""

import subprocess
import sys

from bench.harness import ROOT, Harness, cpu_seconds, tree
from bench.origins import start_at_defaults
from bench.scenarios import clear_run

MANY_ORIGINS = 16


def tls_run(h: Harness, *, count: int, processes: int, origins: int, http2: bool) -> dict:
    from django.db.models import Max
    from django.utils import timezone

    from callbacks.models import CallbackTask

    directory = h.var_dir / f"tls-{len(h.processes)}-{int(http2)}-{origins}"
    directory.mkdir(exist_ok=True)
    sink = subprocess.Popen(
        [sys.executable, "bench/tls_sink.py", "--dir", str(directory), "--origins", str(origins)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    sink.label = "tls-sink"
    h.processes.append(sink)
    urls = [f"https://127.0.0.1:{int(port)}/hook" for port in sink.stdout.readline().split()]
    start_at_defaults(
        h, processes, CALLBACKS_HTTP2="on" if http2 else "off", CALLBACKS_CA_BUNDLE=directory / "ca.pem"
    )
    service = [p for p in h.processes if p.label in ("dispatcher", "workers")]
    # Every origin once at least (each learns its protocol and opens its connections), then cleared.
    h.insert_tasks(urls, [timezone.now()] * max(200, 4 * origins))
    if not h.wait_final(max(200, 4 * origins), 120, url=urls):
        raise SystemExit(f"warm-up did not finish: see the logs in {h.var_dir}")
    for url in urls:
        clear_run(url)
    cpu_before = cpu_seconds([pid for p in service for pid in tree(p.pid)], reaped=True)
    h.insert_tasks(urls, [timezone.now()] * count)
    inserted = timezone.now()
    finished = h.wait_final(count, 1800, url=urls)
    cpu = cpu_seconds([pid for p in service for pid in tree(p.pid)], reaped=True) - cpu_before
    tasks = CallbackTask.objects.filter(url__in=urls)
    last = tasks.aggregate(last=Max("finished_at"))["last"]
    succeeded = tasks.filter(status="succeeded").count()
    h.stop_all()
    for url in urls:
        clear_run(url)
    return {
        "rate": count / (last - inserted).total_seconds(),
        "cpu_per_1000": cpu / count * 1000,
        "succeeded": succeeded,
        "finished": finished,
    }


def http2(h: Harness, args) -> list:
    count, processes = args.count, args.processes
    rows = []
    for origins in (1, MANY_ORIGINS):
        one = tls_run(h, count=count, processes=processes, origins=origins, http2=False)
        two = tls_run(h, count=count, processes=processes, origins=origins, http2=True)
        where = "one origin" if origins == 1 else f"{origins} origins"
        for name, run in (("HTTP/1.1", one), ("HTTP/2", two)):
            rows.append(
                (
                    f"{name} over TLS, {where} at the defaults, {count:,} due now",
                    f"{run['rate']:,.0f} callbacks/s",
                    f"{run['cpu_per_1000']:.2f} CPU s per 1,000 callbacks; {run['succeeded']:,}/{count:,} "
                    "succeeded" + ("" if run["finished"] else " (TIMED OUT)"),
                    f"{run['rate'] / one['rate']:.2f}",
                    "(HTTP/1.1 = 1.00)",
                )
            )
    return rows
