"""The idle scenario: what the whole service costs when there is nothing to send, and how fast it
still wakes up.

Starts the documented topology with its defaults (web under gunicorn as docs/deploy.md runs it,
run_dispatcher, qcluster), no callbacks due, waits until every part has reported itself alive and
settled, then measures the CPU each process uses over a window (30 s by default): the
dispatcher, each process of the django-q2 cluster, the web processes and the PostgreSQL backends
serving this run's database; in percent of one core. Then the wake-up latency from idle: one
callback due now at a time, created -> received by the sink, a few samples spaced so that each
finds the service idle again. Both brokers, side by side in one run: the ORM broker (no
REDIS_URL) and Redis (a database of its own, emptied first; the whole redis-server is
measured too, as a note: other clients of that server count there).

As a scenario of `make bench` it is `idle(h, args)`; on its own:

    python -m bench.idle [--idle-seconds 30] [--wakeups 5] [--brokers orm,redis]
"""

import argparse
import socket
import sys
import time
import urllib.request
from pathlib import Path

from bench.harness import ROOT, Harness, cpu_seconds, percentile, prepared_harness, print_table, tree
from bench.profile import postgres_backends
from bench.scenarios import clear_run

# Django, django_q and the project's modules are imported inside the functions that use them: they
# need django.setup(), which runs only after Harness.setup_django() has migrated this run's database.

GOAL = "< 1 % of one core in all"
WAKEUP_GOAL = "tens of ms"
REDIS_URL = "redis://127.0.0.1:6379/14"  # a database of its own, emptied before each run
SETTLE_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_topology(h: Harness, *, processes: int, **env) -> dict:
    """Web, dispatcher and cluster as docs/deploy.md runs them, with the service's defaults."""
    port = free_port()
    web = h.start("web", "-m", "gunicorn", "taskcenter.wsgi", "-w", "4", "-b", f"127.0.0.1:{port}", **env)
    dispatcher = h.start("dispatcher", "manage.py", "run_dispatcher", **env)
    cluster = h.start("workers", "manage.py", "qcluster", CALLBACKS_WORKER_PROCESSES=processes, **env)
    return {"web": web, "dispatcher": dispatcher, "cluster": cluster, "port": port}


def wait_ready(h: Harness, service: dict, *, processes: int, timeout: float = 120) -> None:
    """Until the web answers and the dispatcher and every worker process have beaten."""
    from callbacks.delivery.instruments.heartbeats import DISPATCHER, WORKER
    from callbacks.models import Heartbeat

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{service['port']}/healthz", timeout=2).read()
            web_up = True
        except OSError:
            web_up = False
        beats = Heartbeat.objects.all()
        if (
            web_up
            and beats.filter(role=DISPATCHER, info__leader=True).exists()
            and beats.filter(role=WORKER).count() >= processes
        ):
            return
        time.sleep(0.2)
    raise SystemExit(f"the service did not come up: see the logs in {h.var_dir}")


def roles(h: Harness, service: dict, *, processes: int) -> dict:
    """Process role -> pids. The sentinel's children are in spawn order (django-q2's spawn_cluster:
    the workers, then the monitor, then the pusher); pids grow with spawn order here."""
    from django.db import connection

    cluster = service["cluster"].pid
    sentinel = [pid for pid in tree(cluster) if pid != cluster][:1]
    children = sorted(set(tree(sentinel[0])) - set(sentinel)) if sentinel else []
    names = [f"worker {n + 1}" for n in range(processes)] + ["monitor", "pusher"]
    found = {
        "dispatcher": tree(service["dispatcher"].pid),
        "cluster main": [cluster],
        "cluster sentinel": sentinel,
    }
    for name, pid in zip(names, children, strict=False):  # fewer children when one was being replaced
        found[f"cluster {name}"] = [pid]
    found["web (gunicorn, 4 workers)"] = tree(service["web"].pid)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own = cursor.fetchone()[0]
    found["postgresql backends"] = [pid for pid in postgres_backends(h.db_name) if pid != own]
    connection.close()  # this process's own backend is not part of the service
    return found


def redis_server_pid() -> int | None:
    for stat in Path("/proc").glob("[0-9]*/comm"):
        try:
            if stat.read_text().strip() == "redis-server":
                return int(stat.parent.name)
        except OSError:
            pass
    return None


def measure(found: dict, seconds: float) -> dict:
    """Percent of one core per role over `seconds` of idleness."""
    before = {role: cpu_seconds(pids, reaped=True) for role, pids in found.items()}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    return {
        role: 100 * (cpu_seconds(pids, reaped=True) - before[role]) / elapsed for role, pids in found.items()
    }


def wakeups(h: Harness, url: str, *, samples: int, sink) -> list[float]:
    """Created -> received (ms) of one callback due now, `samples` times, each from idle."""
    from django.utils import timezone

    from callbacks.models import CallbackTask

    latencies = []
    for _ in range(samples):
        time.sleep(2.0)  # idle again: the broker and the dispatcher back in their longest wait
        (task_id,) = h.insert_tasks(url, [timezone.now()])
        created = CallbackTask.objects.get(id=task_id).created_at.timestamp()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            received = sink.state()["received"].get(str(task_id))
            if received:
                latencies.append((min(received) - created) * 1000)
                break
            time.sleep(0.05)
        else:
            raise SystemExit(f"a callback due now was not received in 30 s: see the logs in {h.var_dir}")
    return latencies


def idle_run(h: Harness, *, broker: str, seconds: float, samples: int, processes: int) -> dict:
    env = {}
    redis_pid = None
    if broker == "redis":
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        env["REDIS_URL"] = REDIS_URL
        redis_pid = redis_server_pid()
    sink = h.start_sink(record=True)
    service = start_topology(h, processes=processes, **env)
    wait_ready(h, service, processes=processes)
    time.sleep(SETTLE_SECONDS)
    found = roles(h, service, processes=processes)
    if redis_pid:
        found["redis-server (whole server, shared)"] = [redis_pid]
    used = measure(found, seconds)
    latencies = wakeups(h, sink.url, samples=samples, sink=sink)
    h.stop_all()
    clear_run(sink.url)
    return {"used": used, "latencies": latencies}


def _service_total(used: dict) -> float:
    return sum(share for role, share in used.items() if not role.startswith("redis-server"))


def idle(h: Harness, args) -> list:
    """Rows for the report: (scenario, ours, reference or notes, figure, goal)."""
    rows = []
    seconds = getattr(args, "idle_seconds", 30.0)
    samples = getattr(args, "wakeups", 5)
    for broker in getattr(args, "brokers", "orm,redis").split(","):
        result = idle_run(h, broker=broker, seconds=seconds, samples=samples, processes=args.processes)
        used, latencies = result["used"], result["latencies"]
        label = "ORM broker" if broker == "orm" else "Redis broker"
        parts = ", ".join(f"{role} {share:.2f}" for role, share in used.items())
        rows.append(
            (
                f"idle: web + run_dispatcher + qcluster ({args.processes} workers), {label}, {seconds:.0f} s",
                f"{_service_total(used):.2f} % of one core",
                f"% of one core: {parts}",
                f"{_service_total(used):.2f} %",
                GOAL,
            )
        )
        rows.append(
            (
                f"wake-up from idle, {label}: one callback due now, {len(latencies)} samples",
                f"avg {sum(latencies) / len(latencies):,.1f} ms, max {max(latencies):,.1f} ms",
                "created -> received by the sink; samples "
                + ", ".join(f"{latency:.0f}" for latency in latencies)
                + f" ms (p50 {percentile(latencies, 50):.0f} ms)",
                "",
                WAKEUP_GOAL,
            )
        )
    return rows


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="the measurement window")
    parser.add_argument("--wakeups", type=int, default=5, help="wake-up samples per broker")
    parser.add_argument("--brokers", default="orm,redis")
    parser.add_argument("--processes", type=int, default=2, help="django-q2 worker processes")
    args = parser.parse_args()
    rows = []
    with prepared_harness("idle") as h:
        rows = idle(h, args)
    print_table(rows)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
