"""Where a burst's CPU goes: per process, and (with --py-spy) per function.

Runs the throughput scenario's pipeline once (callbacks due now, fast sink; the per-origin limit
lifted as there, or the defaults with --defaults) and prints the CPU
seconds each part used per callback: dispatcher, each django-q2 process, the PostgreSQL
backends, the sink. With --py-spy DIR it also records a py-spy profile (speedscope JSON) of the
dispatcher and of every cluster process while the burst drains. For reference it then runs the
bare requests.Session loop (bench/bare.py, one per process) against the same sink and prints its
CPU per request, the loop's and the sink's.

    python -m bench.profile [--count 20000] [--processes 2] [--defaults] [--origins 1] [--py-spy var/profile]
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import cpu_seconds, prepared_harness, tree
from bench.scenarios import start_service, warm_up

# Django, django_q and the project's modules are imported inside the functions that use them: they
# need django.setup(), which runs only after Harness.setup_django() has migrated this run's database.


def postgres_backends(database: str) -> list[int]:
    """PIDs of the server processes serving `database` (psql is not needed: ask the server)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [database])
        return [row[0] for row in cursor.fetchall()]


def statements(reset: bool = False) -> list:
    """pg_stat_statements of this database, when the server loads it (shared_preload_libraries):
    the statements that cost the most server time. Empty when it is not loaded."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
        if not cursor.fetchone():
            try:
                cursor.execute("CREATE EXTENSION pg_stat_statements")
            except Exception:
                return []
        try:
            if reset:
                cursor.execute("SELECT pg_stat_statements_reset()")
                return []
            cursor.execute(
                "SELECT calls, rows, total_exec_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 110) "
                "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "ORDER BY total_exec_time DESC LIMIT 25"
            )
            return cursor.fetchall()
        except Exception:  # loaded as an extension but not preloaded
            return []


def how_tasks_started(urls) -> tuple[int, int, int, int]:
    """(tasks started by lanes' refills, the refills that started them, tasks the leader claimed, its
    claims) in the burst to `urls`: a statement writes its tasks' history with one time, so the
    distinct times count the statements. What a run costs per callback follows from these counts
    more than from anything else the limits change, and they do not drift with the machine."""
    from callbacks.models import TaskEvent, TaskStatus

    events = TaskEvent.objects.filter(task__url__in=urls)
    refilled = events.filter(
        to_status=TaskStatus.RUNNING, from_status__in=(TaskStatus.SCHEDULED, TaskStatus.RETRYING)
    )
    claimed = events.filter(to_status=TaskStatus.QUEUED)
    return (
        refilled.count(),
        refilled.values("at").distinct().count(),
        claimed.count(),
        claimed.values("at").distinct().count(),
    )


def bare_loop_cpu(sink, *, count: int, processes: int) -> tuple[float, float, float]:
    """(loop CPU s, sink CPU s, wall s) of `count` requests sent by bare Session loops."""
    share = count // processes
    sink_before = cpu_seconds([sink.process.pid])
    started = time.monotonic()
    loops = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.bare", "--url", sink.url, "--count", str(share)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    loop_cpu = sum(float(loop.communicate()[0].split()[1]) for loop in loops)
    return loop_cpu, cpu_seconds([sink.process.pid]) - sink_before, time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="keep the service's default limits (the sink is one origin: its concurrency limit applies)",
    )
    parser.add_argument("--origins", type=int, default=1, help="origins (ports) the sink listens on, in turn")
    parser.add_argument("--py-spy", dest="py_spy", default="", help="directory for py-spy profiles")
    parser.add_argument(
        "--gil", action="store_true", help="py-spy: sample only threads holding the GIL (CPU)"
    )
    args = parser.parse_args()

    with prepared_harness("profile") as h:
        from django.db.models import Max
        from django.utils import timezone

        from callbacks.models import CallbackTask

        sink = h.start_sink(origins=args.origins)
        dispatcher, cluster = start_service(h, args.processes, defaults=args.defaults)
        warm_up(h, sink.url)
        roles = {"dispatcher": tree(dispatcher.pid)}
        cluster_pids = tree(cluster.pid)
        roles["cluster (all processes)"] = cluster_pids
        for number, pid in enumerate(cluster_pids):
            roles[f"  cluster[{number}] pid {pid}"] = [pid]
        roles["sink"] = [sink.process.pid]
        roles["postgresql backends"] = postgres_backends(h.db_name)
        before = {role: cpu_seconds(pids, reaped=True) for role, pids in roles.items()}
        system_before = {
            role: cpu_seconds(pids, reaped=True, system_only=True) for role, pids in roles.items()
        }
        spies = []
        if args.py_spy:
            out = Path(args.py_spy)
            out.mkdir(parents=True, exist_ok=True)
            for role, pids in roles.items():
                if role in ("sink", "postgresql backends", "cluster (all processes)"):
                    continue
                name = role.strip().split()[0].replace("[", "-").replace("]", "")
                spies.append(
                    subprocess.Popen(
                        [
                            str(Path(sys.executable).parent / "py-spy"),
                            "record",
                            "--nonblocking",
                            *(["--gil"] if args.gil else []),
                            "--format",
                            "speedscope",
                            "-o",
                            str(out / f"{name}.json"),
                            "--pid",
                            str(pids[0]),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
        statements(reset=True)
        due = timezone.now()
        started = time.monotonic()
        h.insert_tasks(sink.urls, [due] * args.count)
        inserted = timezone.now()
        h.wait_final(args.count + 0, 900, url=sink.urls)
        elapsed = time.monotonic() - started
        # Backends connected during the burst count too.
        roles["postgresql backends"] = sorted(
            set(roles["postgresql backends"]) | set(postgres_backends(h.db_name))
        )
        roles["cluster (all processes)"] = sorted(set(cluster_pids) | set(tree(cluster.pid)))
        used = {role: cpu_seconds(pids, reaped=True) - before.get(role, 0.0) for role, pids in roles.items()}
        system = {
            role: cpu_seconds(pids, reaped=True, system_only=True) - system_before.get(role, 0.0)
            for role, pids in roles.items()
        }
        last = CallbackTask.objects.filter(url__in=sink.urls).aggregate(last=Max("finished_at"))["last"]
        for spy in spies:
            spy.send_signal(2)
        for spy in spies:
            spy.wait(timeout=60)
        rate = args.count / (last - inserted).total_seconds()
        insert_seconds = (inserted - due).total_seconds()
        print(
            f"{args.count} callbacks, {rate:,.0f}/s from their commit ({insert_seconds:.1f} s to insert), {elapsed:.1f} s wall"
        )
        total = 0.0
        for role, seconds in used.items():
            if not role.startswith(" "):
                total += seconds
            share = f"{100 * system[role] / seconds:3.0f} % in the kernel" if seconds > 0.05 else ""
            print(
                f"  {role:34} {seconds:7.2f} s CPU  {1000 * seconds / args.count:6.3f} ms/callback  {share}"
            )
        print(f"  {'total':34} {total:7.2f} s CPU  {1000 * total / args.count:6.3f} ms/callback")
        refilled, refills, claimed, claims = how_tasks_started(sink.urls)
        print(
            f"  started: {refilled:,} by {refills:,} lane refills ({refilled / max(1, refills):.1f} a refill), "
            f"{claimed:,} claimed by the leader in {claims:,} claims"
        )
        loop_cpu, sink_cpu, wall = bare_loop_cpu(sink, count=args.count, processes=args.processes)
        bare_count = args.count // args.processes * args.processes
        print(
            f"reference, bare requests.Session loop x{args.processes} to the same sink: "
            f"{bare_count / wall:,.0f} req/s"
        )
        for role, seconds in (("loop", loop_cpu), ("sink", sink_cpu), ("total", loop_cpu + sink_cpu)):
            print(f"  {role:34} {seconds:7.2f} s CPU  {1000 * seconds / bare_count:6.3f} ms/request")
        top = statements()
        if top:
            print("statements by server time (pg_stat_statements):")
            for calls, rows, ms, query in top:
                print(f"  {ms:9.0f} ms {calls:7} calls {rows:8} rows  {query}")


if __name__ == "__main__":
    main()
