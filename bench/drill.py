"""`make drill`: faults during delivery runs. The service must recover by itself.

Runs the service as in production (PostgreSQL, Redis broker, two dispatchers, a worker
cluster) against a recording sink on 127.0.0.1. For each fault: a run of callbacks spread
over a few seconds, the fault in the middle of it, then a wait until every callback is final.
Faults: restart PostgreSQL, restart Redis, kill -9 a worker process, kill -9 the qcluster's main
process (its children must stop with it; a supervisor starts a new cluster), kill -9 the leading
dispatcher (a supervisor starts a new one, as systemd would). It prints what it did, how long
recovery took, and the count of callbacks lost and sent more than once (duplicates are counted:
delivery is at least once, and a killed worker's in-flight requests may have reached the sink).

    python -m bench.drill [--per-fault 2000]

It restarts the machine's PostgreSQL and Redis: run it on a machine of your own, not one that
others' work depends on at that moment.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

import redis

from bench.harness import Harness, running, thread_count, tree

# Django, django_q and the project's modules are imported inside the functions that use them: they
# need django.setup(), which runs only after Harness.setup_django() has migrated this run's database.

REDIS_DB_URL = "redis://127.0.0.1:6379/12"
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
    "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip


def restart_postgres(drill):
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True)
    return f"restarted PostgreSQL {version}"


def restart_redis(drill):
    subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False, capture_output=True)
    subprocess.run(REDIS_START, check=True)
    deadline = time.monotonic() + 10
    while subprocess.run(["redis-cli", "ping"], capture_output=True).stdout.strip() != b"PONG":
        if time.monotonic() > deadline:
            raise RuntimeError("Redis did not come back")
        time.sleep(0.1)
    return "restarted Redis (it keeps nothing: batches in the broker were lost)"


def kill_worker(drill):
    busiest = max(tree(drill.cluster.pid)[1:], key=thread_count)  # a worker: its sender threads
    os.kill(busiest, signal.SIGKILL)
    return f"kill -9 worker process {busiest}"


def kill_cluster_main(drill):
    """kill -9 of the qcluster's main process: its sentinel and workers must stop with it (no orphan
    cluster delivering beside the supervisor's new one); the supervisor starts a new cluster."""
    main = drill.cluster
    children = tree(main.pid)[1:]
    os.kill(main.pid, signal.SIGKILL)
    main.wait()
    drill.harness.processes.remove(main)
    deadline = time.monotonic() + 10
    while (alive := [pid for pid in children if running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in alive:  # orphans: stopped here so they do not deliver beside the new cluster
        os.kill(pid, signal.SIGKILL)
    drill.cluster = drill.start_cluster()
    return (
        f"kill -9 qcluster main process {main.pid}: {len(children) - len(alive)} of its {len(children)} "
        f"children stopped with it, {len(alive)} orphans; a new cluster started"
    )


def kill_dispatcher(drill):
    leader = drill.leader()
    os.kill(leader.pid, signal.SIGKILL)
    drill.dispatchers.remove(leader)
    drill.harness.processes.remove(leader)
    drill.dispatchers.append(drill.start_dispatcher())  # the supervisor restarts it, as a standby
    return f"kill -9 leading dispatcher {leader.pid}; a new standby started"


FAULTS = [restart_postgres, restart_redis, kill_worker, kill_cluster_main, kill_dispatcher]


class Drill:
    def __init__(self, args):
        self.args = args
        self.harness = Harness(
            name="drill",
            env={
                "REDIS_URL": REDIS_DB_URL,
                # Batches lost with Redis come back through their leases; short ones recover fast.
                "CALLBACKS_QUEUED_LEASE_SECONDS": 10,
                "CALLBACKS_RUNNING_LEASE_MARGIN_SECONDS": 5,
                "CALLBACKS_STANDBY_POLL_SECONDS": 0.5,
                "CALLBACKS_HEARTBEAT_SECONDS": 0.5,  # the drill finds the leader by its heartbeat
                "CALLBACKS_MAX_CONCURRENCY_PER_ORIGIN": 200,
            },
        )
        self.dispatchers = []
        self.started_dispatchers = 0
        self.started_clusters = 0

    def start_dispatcher(self):
        self.started_dispatchers += 1
        return self.harness.start(f"dispatcher-{self.started_dispatchers}", "manage.py", "run_dispatcher")

    def start_cluster(self):
        self.started_clusters += 1
        return self.harness.start(
            f"workers-{self.started_clusters}", "manage.py", "qcluster", LOG_LEVEL="ERROR"
        )

    def leader(self):
        """The dispatcher that leads now, by its heartbeat (each reports whether it leads)."""
        from django.utils import timezone

        from callbacks.models import Heartbeat

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            recent = Heartbeat.objects.filter(
                role="dispatcher", seen_at__gte=timezone.now() - timedelta(seconds=2)
            )
            leading = {
                int(name.rsplit(":", 1)[1])
                for name, info in recent.values_list("name", "info")
                if info.get("leader")
            }
            for process in self.dispatchers:
                if process.pid in leading:
                    return process
            time.sleep(0.2)
        raise RuntimeError("no leading dispatcher found")

    def run(self):
        redis.Redis.from_url(REDIS_DB_URL).flushdb()
        harness = self.harness
        harness.make_database()
        try:
            harness.setup_django()
            self.sink = harness.start_sink(record=True)
            self.dispatchers = [self.start_dispatcher(), self.start_dispatcher()]
            self.cluster = self.start_cluster()
            print(
                f"# make drill — {self.args.per_fault} callbacks per fault, spread over 4 s, fault at 2 s\n"
            )
            print("| fault | what was done | callbacks | recovered (all final) after |")
            print("|---|---|---|---|")
            total = 0
            for fault in FAULTS:
                total += self.args.per_fault
                self.one_fault(fault, total)
            self.report(total)
        finally:
            harness.stop_all()
            harness.drop_database()

    def one_fault(self, fault, total):
        from django.db import close_old_connections
        from django.utils import timezone

        now = timezone.now()
        count = self.args.per_fault
        due = [now + timedelta(seconds=4 * i / count) for i in range(count)]
        self.harness.insert_tasks(
            self.sink.url, due, max_retries=10, backoff_initial_seconds=0.5, backoff_max_seconds=5
        )
        time.sleep(2)  # the run is under way: inject the fault in its middle
        faulted_at = time.monotonic()  # recovery counts from the fault's start (a restart takes seconds)
        what = fault(self)
        close_old_connections()
        recovered = self._wait_all_final(total, timeout=300)
        took = f"{time.monotonic() - faulted_at:.1f} s" if recovered else "NOT RECOVERED in 300 s"
        print(f"| {fault.__name__} | {what} | {count} | {took} |", flush=True)

    def _wait_all_final(self, total, timeout):
        from django.db import DatabaseError, close_old_connections

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.harness.wait_final(total, timeout=1):
                    return True
            except DatabaseError:
                close_old_connections()
                time.sleep(0.5)
        return False

    def report(self, total):
        from callbacks.models import CallbackTask, TaskExecution

        received = Counter({task_id: len(times) for task_id, times in self.sink.state()["received"].items()})
        ids = {str(task_id) for task_id in CallbackTask.objects.values_list("id", flat=True)}
        succeeded = CallbackTask.objects.filter(status="succeeded").count()
        lost = len(ids - set(received))
        twice = sum(1 for task_id in ids if received[task_id] > 1)
        interrupted = TaskExecution.objects.filter(outcome="interrupted").count()
        print()
        print(
            f"callbacks: {total}; succeeded: {succeeded}; never received (lost): {lost}; "
            f"received more than once: {twice}; attempts recorded as interrupted: {interrupted}"
        )
        if lost or succeeded != total:
            sys.exit(1)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-fault", type=int, default=2000)
    Drill(parser.parse_args()).run()


if __name__ == "__main__":
    main()
