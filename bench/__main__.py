"""`make bench`: the whole pipeline against a fast local receiver, beside its references.

Starts everything itself on 127.0.0.1: a fresh PostgreSQL database (from DATABASE_URL's
server, default 127.0.0.1:5432), the sink (bench/sink.py), run_dispatcher and qcluster.
Scenarios run one after another in one invocation, so their figures compare side by side:

- pipeline: N callbacks due now, bulk-inserted while dispatcher and workers run; every
  attempt recorded. Reports callbacks/s (first due -> last recorded) and due-to-sent lag.
- ceiling: the same number of bare `requests.Session` loops, one process per worker process,
  sending N requests to the same sink.

    python -m bench [--count 5000] [--processes 2] [--scenarios pipeline,ceiling]
"""

import argparse
import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def percentile(values, q):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class Bench:
    def __init__(self, args):
        self.args = args
        self.var_dir = ROOT / "var" / f"bench-{os.getpid()}"
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.processes = []
        self.rows = []

    # --- set-up -------------------------------------------------------------------------
    def make_database(self):
        import psycopg

        base = urlsplit(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres")
        if not base.scheme.startswith("postgres"):
            sys.exit("make bench needs PostgreSQL: set DATABASE_URL to a postgres:// URL (or leave it unset)")
        self.db_name = f"tc_bench_{os.getpid()}"
        admin = urlunsplit(base._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.db_name}")
        self.admin_url = admin
        self.database_url = urlunsplit(base._replace(path=f"/{self.db_name}"))

    def drop_database(self):
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")

    def env(self, **extra):
        env = dict(os.environ)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "taskcenter.settings",
                "DATABASE_URL": self.database_url,
                "CALLBACKS_VAR_DIR": str(self.var_dir),
                "CALLBACKS_ALLOWED_NETWORKS": "127.0.0.0/8",
                "CALLBACKS_WORKER_PROCESSES": str(self.args.processes),
                "LOG_LEVEL": "WARNING",
            }
        )
        env.update({key: str(value) for key, value in extra.items()})
        return env

    def setup_django(self):
        os.environ.update(self.env())
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.env(), check=True)
        import django

        django.setup()
        from callbacks.services.tenants import tenant_create

        self.tenant = tenant_create(name="bench").tenant

    def start(self, *args, **env):
        log = open(self.var_dir / f"{args[0]}.log", "ab")
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def start_sink(self, delay=0.0):
        sink = subprocess.Popen(
            [sys.executable, "bench/sink.py", "--delay", str(delay)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        self.processes.append(sink)
        port = int(sink.stdout.readline())
        return sink, f"http://127.0.0.1:{port}/hook"

    def stop_all(self):
        import signal

        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.processes = []

    # --- helpers ------------------------------------------------------------------------
    def insert_due(self, count, url):
        from django.db import connection
        from django.utils import timezone

        from callbacks.delivery.wakeup import notify_dispatcher
        from callbacks.models import CallbackTask

        now = timezone.now()
        origin = "{0.scheme}://{0.hostname}:{0.port}".format(urlsplit(url))
        tasks = [
            CallbackTask(
                id=uuid.uuid4(),
                tenant=self.tenant,
                url=url,
                origin=origin,
                payload='{"hello":"world"}',
                run_at=now,
                next_attempt_at=now,
                due_at=now,
                max_retries=3,
                backoff_initial_seconds=1,
                backoff_multiplier=1.5,
                backoff_max_seconds=60,
                connect_timeout_seconds=10,
                total_timeout_seconds=30,
                success_statuses="200-299",
            )
            for _ in range(count)
        ]
        CallbackTask.objects.bulk_create(tasks, batch_size=2000)
        notify_dispatcher()
        connection.close()
        return now, [task.id for task in tasks]

    def wait_final(self, ids, timeout):
        """Wait until every task in the table is final (each scenario starts from an empty table)."""
        from callbacks.models import FINAL_STATUSES, CallbackTask

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if CallbackTask.objects.filter(status__in=FINAL_STATUSES).count() >= len(ids):
                return True
            time.sleep(0.1)
        return False

    # --- scenarios ----------------------------------------------------------------------
    def scenario_pipeline(self):
        from django.db.models import Max

        from callbacks.models import CallbackTask, TaskExecution

        _, url = self.start_sink()
        self.start("manage.py", "run_dispatcher")
        self.start("manage.py", "qcluster")
        warm_at, warm = self.insert_due(200, url)  # warm-up: processes up, connections open
        if not self.wait_final(warm, 120):
            sys.exit("warm-up did not finish: see " + str(self.var_dir))
        CallbackTask.objects.all().delete()

        count = self.args.count
        due_at, ids = self.insert_due(count, url)
        finished = self.wait_final(ids, 600)
        last = CallbackTask.objects.aggregate(last=Max("finished_at"))["last"]
        elapsed = (last - due_at).total_seconds()
        lags = [
            (started - due).total_seconds() * 1000
            for started, due in TaskExecution.objects.filter(attempt=1).values_list(
                "started_at", "task__due_at"
            )
        ]
        succeeded = CallbackTask.objects.filter(status="succeeded").count()
        self.stop_all()
        self.rows.append(
            (
                f"pipeline ({self.args.processes} worker processes)",
                f"{count / elapsed:,.0f} callbacks/s",
                f"{succeeded}/{count} succeeded{'' if finished else ' (TIMED OUT)'}; due-to-sent lag "
                f"p50 {percentile(lags, 50):.0f} ms, p99 {percentile(lags, 99):.0f} ms, max {max(lags):.0f} ms",
            )
        )
        self.pipeline_rate = count / elapsed

    def scenario_ceiling(self):
        _, url = self.start_sink()
        share = self.args.count // self.args.processes
        started = time.perf_counter()
        loops = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.bare", "--url", url, "--count", str(share)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
            )
            for _ in range(self.args.processes)
        ]
        for loop in loops:
            loop.wait()
        elapsed = time.perf_counter() - started
        self.stop_all()
        rate = share * self.args.processes / elapsed
        self.rows.append(
            (f"bare requests.Session loop x{self.args.processes}", f"{rate:,.0f} requests/s", "the ceiling")
        )
        self.ceiling_rate = rate

    # --- report -------------------------------------------------------------------------
    def report(self):
        print()
        print(
            f"# make bench — {datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, {self.args.count} callbacks"
        )
        print()
        print("| scenario | figure | notes |")
        print("|---|---|---|")
        for row in self.rows:
            print("| " + " | ".join(row) + " |")
        if hasattr(self, "pipeline_rate") and hasattr(self, "ceiling_rate"):
            print()
            print(f"pipeline / ceiling = {self.pipeline_rate / self.ceiling_rate:.2f}")


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--scenarios", default="pipeline,ceiling")
    args = parser.parse_args()
    bench = Bench(args)
    bench.make_database()
    try:
        bench.setup_django()
        for name in args.scenarios.split(","):
            getattr(bench, f"scenario_{name.strip()}")()
    finally:
        bench.stop_all()
        from django.db import connections

        connections.close_all()
        bench.drop_database()
    bench.report()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
