"""What the benchmark and the drill share: a throw-away PostgreSQL database, the service's
processes started as an operator would, the sink, and measurements of processes (CPU, PSS).

Everything runs on 127.0.0.1. Django is set up in this process against the same database, so
scenarios insert tasks and read results directly.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench.polling import wait_for_count

# Django, django_q and the project's modules are imported inside the functions that use them: they
# need django.setup(), which runs only after Harness.setup_django() has migrated this run's database.

ROOT = Path(__file__).resolve().parent.parent


def percentile(values, q):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def print_table(rows, *, title: str = "") -> None:
    """The report: one markdown table of (scenario, ours, reference or notes, figure, goal) rows."""
    print()
    if title:
        print(title)
        print()
    print("| scenario | ours | reference or notes (same run) | figure | goal |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


@contextmanager
def prepared_harness(name: str):
    """A Harness with a fresh migrated database of its own and Django set up on it; afterwards every
    process it started is stopped and the database dropped, whatever happened."""
    h = Harness(name=name)
    h.make_database()
    try:
        h.setup_django()
        yield h
    finally:
        h.stop_all()
        h.drop_database()


class Harness:
    def __init__(self, *, name: str, env: dict | None = None):
        self.name = name
        self.var_dir = ROOT / "var" / f"{name}-{os.getpid()}"
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.extra_env = {key: str(value) for key, value in (env or {}).items()}
        self.processes: list[subprocess.Popen] = []

    # --- database -----------------------------------------------------------------------
    def make_database(self) -> None:
        base = urlsplit(os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres")
        if not base.scheme.startswith("postgres"):
            sys.exit(
                f"{self.name} needs PostgreSQL: set DATABASE_URL to a postgres:// URL (or leave it unset)"
            )
        self.db_name = f"tc_{self.name}_{os.getpid()}"
        self.admin_url = urlunsplit(base._replace(path="/postgres"))
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.db_name}")
        self.database_url = urlunsplit(base._replace(path=f"/{self.db_name}"))

    def drop_database(self) -> None:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")

    def env(self, **extra) -> dict:
        env = dict(os.environ)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "taskcenter.settings",
                "DATABASE_URL": self.database_url,
                "CALLBACKS_VAR_DIR": str(self.var_dir),
                "CALLBACKS_ALLOWED_NETWORKS": "127.0.0.0/8",
                "LOG_LEVEL": "WARNING",
            }
        )
        env.update(self.extra_env)
        env.update({key: str(value) for key, value in extra.items()})
        return env

    def setup_django(self):
        """Migrate the database and set up Django here; returns a tenant to own the tasks."""
        os.environ.update(self.env())
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.env(), check=True)
        import django

        from taskcenter.bootstrap import prepare

        prepare()  # as manage.py does: this process reads var_dir's key and shares its metrics directory
        django.setup()
        from callbacks.services.tenants import tenant_create

        self.tenant = tenant_create(name=self.name).tenant
        return self.tenant

    # --- processes ----------------------------------------------------------------------
    def start(self, label: str, *args, **env) -> subprocess.Popen:
        log = open(self.var_dir / f"{label}.log", "ab")
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process.label = label
        self.processes.append(process)
        return process

    def start_sink(self, *, delay: float = 0.0, record: bool = False, origins: int = 1) -> "Sink":
        """One sink process; with `origins`, listening on that many ports (its `urls`, one per origin)."""
        state = self.var_dir / f"sink-{len(self.processes)}.json"
        args = [sys.executable, "bench/sink.py", "--delay", str(delay), "--state", str(state)]
        args += ["--origins", str(origins)] + (["--record"] if record else [])
        process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, start_new_session=True)
        process.label = "sink"
        self.processes.append(process)
        ports = process.stdout.readline().split()
        return Sink(process, [f"http://127.0.0.1:{int(port)}/hook" for port in ports], state)

    def stop(self, process, timeout: float = 40) -> None:
        """SIGTERM to the process itself (never its group, see docs/deploy.md), then SIGKILL."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process in self.processes:
            self.processes.remove(process)

    def stop_all(self) -> None:
        for process in list(reversed(self.processes)):
            self.stop(process)

    # --- tasks --------------------------------------------------------------------------
    def insert_tasks(self, url: str | list[str], due_times: list, *, tenant=None, **fields) -> list:
        """Bulk-insert tasks due at the given times (as the API would store them), in one transaction;
        wakes the dispatcher. With a list of URLs, the tasks take them in turn; the run's tenant's
        unless `tenant` is given."""
        from django.db import connection
        from django.utils import timezone

        from callbacks.models import CallbackTask
        from callbacks.wakeup import notify_due

        urls = [url] if isinstance(url, str) else url
        origins = ["{0.scheme}://{0.hostname}:{0.port}".format(urlsplit(one)) for one in urls]
        policy = {
            "max_retries": 3,
            "backoff_initial_seconds": 1,
            "backoff_multiplier": 1.5,
            "backoff_max_seconds": 60,
            "connect_timeout_seconds": 10,
            "total_timeout_seconds": 30,
            "success_statuses": "200-299",
            **fields,
        }
        tasks = [
            CallbackTask(
                id=uuid.uuid4(),
                tenant=tenant or self.tenant,
                url=urls[index % len(urls)],
                origin=origins[index % len(urls)],
                payload='{"hello":"world"}',
                run_at=due,
                next_attempt_at=due,
                due_at=due,
                **policy,
            )
            for index, due in enumerate(due_times)
        ]
        CallbackTask.objects.bulk_create(tasks, batch_size=2000)
        now = timezone.now()
        notify_due({task.origin for task in tasks if task.next_attempt_at <= now})  # as task_create does
        connection.close()
        return [task.id for task in tasks]

    def wait_final(self, count: int, timeout: float, url: str | list[str] | None = None) -> bool:
        """Wait until `count` tasks (to `url`, or to any of a list of URLs, when given) are final."""
        from callbacks.domain.vocabulary import FINAL_STATUSES
        from callbacks.models import CallbackTask

        tasks = CallbackTask.objects.filter(status__in=FINAL_STATUSES)
        if url:
            tasks = tasks.filter(url__in=[url] if isinstance(url, str) else url)
        return wait_for_count(tasks.count, count, timeout)


class Sink:
    def __init__(self, process, urls: list[str], state_path):
        self.process = process
        self.urls = urls  # one per origin (port) it listens on
        self.url = urls[0]
        self.state_path = Path(state_path)

    def state(self) -> dict:
        """The sink's counters (and received task ids with --record), read through its state file."""
        before = self.state_path.stat().st_mtime_ns if self.state_path.exists() else None
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.state_path.exists() and self.state_path.stat().st_mtime_ns != before:
                return json.loads(self.state_path.read_text())
            time.sleep(0.02)
        raise RuntimeError("the sink did not write its state")

    def reset(self) -> None:
        self.process.send_signal(signal.SIGUSR2)


# --- measuring processes ------------------------------------------------------------------
def running(pid: int) -> bool:
    """Alive, as opposed to gone or a zombie waiting for its parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            for child in (task / "children").read_text().split():
                found.extend(tree(int(child)))
        except OSError:
            pass
    return found


def thread_count(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pids) -> int:
    """Proportional set size: shared pages split among the processes sharing them (forked
    workers share most of their memory, so RSS would count it many times)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pids, *, reaped: bool = False, system_only: bool = False) -> float:
    """User plus system CPU time of the processes so far. With `reaped`, also that of their
    children already reaped (django-q2 recycles workers: a recycled worker's CPU moves to its
    parent's cutime/cstime); with `system_only`, only the part spent in the kernel."""
    ticks = os.sysconf("SC_CLK_TCK")
    # /proc/<pid>/stat after the command name: utime 11, stime 12; reaped children's 13, 14.
    columns = [12] if system_only else [11, 12]
    if reaped:
        columns += [column + 2 for column in columns]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(fields[column]) for column in columns)
        except OSError:
            pass
    return total / ticks
