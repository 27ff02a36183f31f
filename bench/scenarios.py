"""The benchmark's scenarios. Each starts the processes it needs, measures, stops them,
and returns rows for the report: (scenario, ours, reference measured in the same run, ratio or
figure against the goal, goal).

The sink is a single origin, so scenarios that measure the pipeline raise the per-origin
concurrency limit (default 20, a courtesy to real receivers) out of the way, and say so.
"""

import os
import subprocess
import sys
import time
from datetime import timedelta

from bench.harness import ROOT, Harness, cpu_seconds, percentile, pss_kib, tree

# Django, django_q and the project's modules are imported inside the functions that use them: they
# need django.setup(), which runs only after Harness.setup_django() has migrated this run's database.

# The pipeline measured, not the per-origin courtesy limit (the sink is one origin); with that
# limit raised, a worker keeps as many connections to the one origin as it has callbacks in
# flight (the default pool, 20 per host, matches the default limit of 20 per origin).
PIPELINE_ENV = {"CALLBACKS_MAX_CONCURRENCY_PER_ORIGIN": 5000, "CALLBACKS_POOL_MAXSIZE_PER_HOST": 200}


def clear_run(url: str) -> None:
    """Delete one run's tasks (each run has a sink, hence a URL, of its own); history stays."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("callbacks_taskevent", "callbacks_taskexecution", "callbacks_tasksearchpath"):
            cursor.execute(
                f"DELETE FROM {table} WHERE task_id IN (SELECT id FROM callbacks_callbacktask WHERE url = %s)",
                [url],
            )
        cursor.execute("DELETE FROM callbacks_callbacktask WHERE url = %s", [url])


def start_service(h: Harness, processes: int, *, embedded: bool = False, defaults: bool = False, **env):
    """run_dispatcher and qcluster; with `embedded`, one `qcluster --dispatcher` (the dispatcher
    in the cluster's main process), returned as both. The per-origin limit is lifted unless
    `defaults`."""
    env = {**({} if defaults else PIPELINE_ENV), "CALLBACKS_WORKER_PROCESSES": processes, **env}
    if embedded:
        cluster = h.start("workers", "manage.py", "qcluster", "--dispatcher", **env)
        return cluster, cluster
    dispatcher = h.start("dispatcher", "manage.py", "run_dispatcher", **env)
    cluster = h.start("workers", "manage.py", "qcluster", **env)
    return dispatcher, cluster


def warm_up(h: Harness, url: str) -> None:
    from django.utils import timezone

    h.insert_tasks(url, [timezone.now()] * 200)
    if not h.wait_final(200, 120, url=url):
        raise SystemExit(f"warm-up did not finish: see the logs in {h.var_dir}")
    clear_run(url)


def pipeline_run(h: Harness, *, count: int, processes: int, **env) -> dict:
    """`count` callbacks due now, inserted while the service runs; every attempt recorded."""
    from django.db.models import Max
    from django.utils import timezone

    from callbacks.models import CallbackTask, TaskExecution

    sink = h.start_sink()
    start_service(h, processes, **env)
    warm_up(h, sink.url)
    due = timezone.now()
    h.insert_tasks(sink.url, [due] * count)
    # The rate counts from the commit of the rows (one transaction): until then the service cannot
    # see them, and making them is the API's work, not delivery's (bulk_create of 20,000 rows
    # takes a second or two here). The lag below still counts from the due time.
    inserted = timezone.now()
    finished = h.wait_final(count, 900, url=sink.url)
    tasks = CallbackTask.objects.filter(url=sink.url)
    last = tasks.aggregate(last=Max("finished_at"))["last"]
    lags = [
        (started - task_due).total_seconds() * 1000
        for started, task_due in TaskExecution.objects.filter(task__url=sink.url, attempt=1).values_list(
            "started_at", "task__due_at"
        )
    ]
    succeeded = tasks.filter(status="succeeded").count()
    h.stop_all()
    clear_run(sink.url)
    return {
        "rate": count / (last - inserted).total_seconds(),
        "insert_seconds": (inserted - due).total_seconds(),
        "rate_from_due": count / (last - due).total_seconds(),
        "lag_p50": percentile(lags, 50),
        "lag_p99": percentile(lags, 99),
        "succeeded": succeeded,
        "finished": finished,
    }


def ceiling_run(h: Harness, *, count: int, processes: int) -> float:
    """Bare requests.Session loops, one per process, against the same sink."""
    sink = h.start_sink()
    share = count // processes
    started = time.perf_counter()
    loops = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.bare", "--url", sink.url, "--count", str(share)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(processes)
    ]
    for loop in loops:
        loop.wait()
    elapsed = time.perf_counter() - started
    h.stop_all()
    return share * processes / elapsed


def naive_run(h: Harness, *, count: int, processes: int) -> float:
    """One django-q2 task per callback calling requests.post; ORM broker; a new database
    connection per broker operation (Django's default CONN_MAX_AGE=0)."""
    from django_q.tasks import async_task

    sink = h.start_sink()
    for _ in range(count):
        async_task("bench.naive.send", sink.url)
    started = time.perf_counter()
    h.start("naive-workers", "manage.py", "qcluster", CALLBACKS_WORKER_PROCESSES=processes, DB_CONN_MAX_AGE=0)
    while sink.state()["requests"] < count:
        time.sleep(0.25)
    elapsed = time.perf_counter() - started
    h.stop_all()
    return count / elapsed


def throughput(h: Harness, args) -> list:
    ours = pipeline_run(h, count=args.count, processes=args.processes)
    ceiling = ceiling_run(h, count=args.count, processes=args.processes)
    naive = naive_run(h, count=args.naive_count, processes=args.processes)
    h.capacity = ours["rate"]
    note = (
        f"{ours['succeeded']}/{args.count} succeeded"
        + ("" if ours["finished"] else " (TIMED OUT)")
        + f"; {ours['rate_from_due']:,.0f} callbacks/s counted from the due time"
    )
    return [
        (
            f"throughput: {args.count:,} due now, {args.processes} worker processes"
            f" (rate from their commit, {ours['insert_seconds']:.1f} s after the due time)",
            f"{ours['rate']:,.0f} callbacks/s",
            f"bare requests.Session loop x{args.processes}: {ceiling:,.0f} req/s",
            f"{ours['rate'] / ceiling:.2f}",
            ">= 0.5 (aim > 1)",
        ),
        (
            "throughput vs the naive design",
            f"{ours['rate']:,.0f} callbacks/s",
            f"task per callback, ORM broker, no persistent connections ({args.naive_count} callbacks): "
            f"{naive:,.1f} callbacks/s",
            f"{ours['rate'] / naive:.0f}x",
            ">= 10x",
        ),
        (
            "due-to-sent lag of that burst",
            f"p50 {ours['lag_p50']:,.0f} ms, p99 {ours['lag_p99']:,.0f} ms",
            note,
            "",
            "(a backlog drains at capacity)",
        ),
    ]


def in_flight(h: Harness, args) -> list:
    """A receiver that answers after a delay: how many callbacks in flight at once, at what memory,
    in both documented topologies side by side (run_dispatcher + qcluster, qcluster --dispatcher).

    With 1 s answers, "at once" is bounded by how many callbacks the service starts in that
    first second (CPU); a receiver answering after 3 s shows the concurrency the workers hold.
    The sink is one origin, so the per-origin limit is lifted (PIPELINE_ENV).
    """
    return [
        row
        for delay in (3.0, 1.0)
        for embedded in (False, True)
        for row in _in_flight_with(h, args, delay, embedded=embedded)
    ]


def _in_flight_with(h: Harness, args, delay: float, *, embedded: bool) -> list:
    from django.utils import timezone

    sink = h.start_sink(delay=delay)
    concurrency = args.inflight // args.processes
    dispatcher, cluster = start_service(
        h,
        args.processes,
        embedded=embedded,
        CALLBACKS_CONCURRENCY=concurrency,
        CALLBACKS_POOL_MAXSIZE_PER_HOST=concurrency,
        CALLBACKS_DISPATCH_MAX_OUTSTANDING=3 * args.inflight,
    )
    warm_up(h, sink.url)

    def service_pss() -> tuple[int, int]:
        """PSS of the whole service, and of the separate dispatcher process (0 when embedded)."""
        separate = 0 if embedded else pss_kib(tree(dispatcher.pid))
        return pss_kib(set(tree(dispatcher.pid) + tree(cluster.pid))), separate

    idle_pss, _ = service_pss()
    count = 4 * args.inflight
    h.insert_tasks(sink.url, [timezone.now()] * count)
    peak_pss = peak_dispatcher = 0
    deadline = time.monotonic() + 300
    from callbacks.domain.vocabulary import FINAL_STATUSES
    from callbacks.models import CallbackTask

    while time.monotonic() < deadline:
        total, separate = service_pss()
        peak_pss, peak_dispatcher = max(peak_pss, total), max(peak_dispatcher, separate)
        if CallbackTask.objects.filter(url=sink.url, status__in=FINAL_STATUSES).count() >= count:
            break
        time.sleep(0.25)
    peak = sink.state()["max_in_flight"]
    h.stop_all()
    clear_run(sink.url)
    split = (
        "dispatcher in the cluster's main process"
        if embedded
        else f"of which the run_dispatcher process {peak_dispatcher / 1024:,.0f} MB"
    )
    return [
        (
            f"in flight: receiver answers after {delay:.0f} s, CALLBACKS_CONCURRENCY={concurrency} x {args.processes}"
            + (", qcluster --dispatcher" if embedded else ", run_dispatcher + qcluster"),
            f"{peak:,} in flight at once",
            f"memory (PSS) of dispatcher + whole django-q2 cluster: peak {peak_pss / 1024:,.0f} MB ({split}); "
            f"{idle_pss / 1024:,.0f} MB idle before the burst, "
            f"{(peak_pss - idle_pss) / max(peak, 1):,.0f} KB per callback in flight",
            f"{peak_pss / 1024:,.0f} MB",
            ">= 1000 in flight, < 200 MB (aim < 150 MB)",
        )
    ]


def _steady_load(h: Harness, *, rate: float, seconds: float, url: str) -> None:
    """Insert callbacks due now at `rate` per second, in 50 ms ticks, for `seconds`."""
    from django.utils import timezone

    tick = 0.05
    owed = 0.0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        owed += rate * tick
        batch = int(owed)
        if batch:
            owed -= batch
            h.insert_tasks(url, [timezone.now()] * batch)
        time.sleep(max(0.0, tick - ((time.monotonic() - started) % tick)))


def latency(h: Harness, args) -> list:
    """Created-to-received overhead at half the measured capacity: at the defaults (one origin, 20 in
    flight) and with the per-origin limit lifted, at the same rate."""
    rate = getattr(h, "capacity", args.rate or 200) / 2
    return [
        _latency_row(h, args, rate=rate, defaults=True, what="at the defaults"),
        _latency_row(h, args, rate=rate, defaults=False, what="limit lifted"),
    ]


def _latency_row(h: Harness, args, *, rate: float, defaults: bool, what: str) -> tuple:
    from callbacks.models import CallbackTask, TaskEvent

    sink = h.start_sink(record=True)
    start_service(h, args.processes, defaults=defaults)
    warm_up(h, sink.url)
    sink.reset()
    _steady_load(h, rate=rate, seconds=args.seconds, url=sink.url)
    tasks = CallbackTask.objects.filter(url=sink.url)
    h.wait_final(tasks.count(), 120, url=sink.url)
    received = sink.state()["received"]
    created = {str(task_id): at for task_id, at in tasks.values_list("id", "created_at")}
    overhead = [
        (min(times) - created[task_id].timestamp()) * 1000
        for task_id, times in received.items()
        if task_id in created
    ]
    # A task the leader claimed was queued first; one a lane took was started from scheduled.
    through_leader = TaskEvent.objects.filter(task__url=sink.url, to_status="queued").count()
    h.stop_all()
    clear_run(sink.url)
    average = sum(overhead) / len(overhead)
    return (
        f"latency at half capacity, {what} ({rate:,.0f}/s for {args.seconds:.0f} s)",
        f"avg {average:,.1f} ms, p50 {percentile(overhead, 50):,.1f} ms, p99 {percentile(overhead, 99):,.1f} ms",
        f"created -> received by the sink, {len(overhead):,} callbacks; "
        f"{1 - through_leader / max(1, len(created)):.0%} started by a lane's refill, not through the dispatcher",
        "",
        "avg < 50 ms, p99 < 200 ms",
    )


def cpu(h: Harness, args) -> list:
    """CPU of dispatcher + cluster at normal load: 10 % of the measured capacity."""
    rate = getattr(h, "capacity", args.rate or 200) / 10
    sink = h.start_sink()
    dispatcher, cluster = start_service(h, args.processes)
    warm_up(h, sink.url)
    pids = tree(dispatcher.pid) + tree(cluster.pid)
    before, started = cpu_seconds(pids), time.monotonic()
    _steady_load(h, rate=rate, seconds=args.seconds, url=sink.url)
    used = cpu_seconds(pids) - before
    elapsed = time.monotonic() - started
    h.stop_all()
    clear_run(sink.url)
    cores = used / elapsed
    return [
        (
            f"CPU at normal load (10 % of capacity: {rate:,.0f} callbacks/s)",
            f"{100 * cores / os.cpu_count():.1f} % of the machine ({cores:.2f} cores)",
            f"{1000 * used / (rate * elapsed):.2f} ms CPU per callback, dispatcher + cluster",
            "",
            "< 50 %",
        )
    ]


def fill_history(rows: int) -> float:
    """`rows` past attempts (of rows/5 finished tasks, five attempts each), made in SQL. Returns seconds."""
    from django.db import connection
    from django.utils import timezone

    from callbacks.models import CallbackTask, TaskExecution, Tenant

    started = time.monotonic()
    template = CallbackTask.objects.create(
        tenant=Tenant.objects.first(),
        url="http://127.0.0.1:9/old",
        origin="http://127.0.0.1:9",
        payload='{"old":true}',
        run_at=timezone.now() - timedelta(days=20),
        max_retries=3,
        backoff_initial_seconds=1,
        backoff_multiplier=1.5,
        backoff_max_seconds=60,
        connect_timeout_seconds=10,
        total_timeout_seconds=30,
        status="succeeded",
        attempts=5,
    )
    task_table, exec_table = CallbackTask._meta.db_table, TaskExecution._meta.db_table
    task_columns = [f.column for f in CallbackTask._meta.concrete_fields]
    overrides = {"id": "gen_random_uuid()", "created_at": "now() - make_interval(secs => g)"}
    select = ", ".join(overrides.get(column, column) for column in task_columns)
    exec_columns = [f.column for f in TaskExecution._meta.concrete_fields if f.column != "id"]
    exec_values = {
        "task_id": "t.id",
        "tenant_id": "t.tenant_id",
        "attempt": "a",
        "started_at": "t.created_at + make_interval(secs => a)",
        "duration_ms": "5 + (a * 7) % 40",
        "outcome": "CASE WHEN a = 5 THEN 'success' ELSE 'http_5xx' END",
        "status_code": "CASE WHEN a = 5 THEN 200 ELSE 503 END",
        "error": "''",
        "request_method": "'POST'",
        "request_url": "t.url",
        "request_headers": "'{}'::jsonb",
        "response_headers": "'{}'::jsonb",
        "response_body": "'ok'",
        "response_truncated": "false",
        "worker": "'history'",
    }
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {task_table} ({', '.join(task_columns)}) "
            f"SELECT {select} FROM {task_table}, generate_series(1, %s) AS g WHERE id = %s",
            [rows // 5, template.id],
        )
        cursor.execute(
            f"INSERT INTO {exec_table} ({', '.join(exec_columns)}) "
            f"SELECT {', '.join(exec_values[c] for c in exec_columns)} "
            f"FROM {task_table} t, generate_series(1, 5) AS a WHERE t.url = 'http://127.0.0.1:9/old'",
        )
        cursor.execute(f"ANALYZE {task_table}; ANALYZE {exec_table}")
    return time.monotonic() - started


def history(h: Harness, args) -> list:
    count = args.history_count
    empty = pipeline_run(h, count=count, processes=args.processes)
    filled_in = fill_history(args.history_rows)
    full = pipeline_run(h, count=count, processes=args.processes)
    return [
        (
            f"history: {args.history_rows:,} past attempts in the table",
            f"{full['rate']:,.0f} callbacks/s",
            f"empty table: {empty['rate']:,.0f} callbacks/s ({count:,} callbacks each; history made in {filled_in:.0f} s)",
            f"{full['rate'] / empty['rate']:.2f}",
            ">= 0.9 (< 10 % cost)",
        )
    ]


def flood(h: Harness, args) -> list:
    """One origin with a large backlog at the default per-origin limit (20 in flight): a tenant
    flooding its own endpoint. The origin is closed most of the time, so each claim must skip
    its backlog: the drain rate and the dispatcher's CPU should not depend on the backlog's size."""
    from callbacks.domain.vocabulary import FINAL_STATUSES
    from callbacks.models import CallbackTask

    sink = h.start_sink()
    dispatcher, _cluster = start_service(
        h, args.processes, CALLBACKS_MAX_CONCURRENCY_PER_ORIGIN=20, CALLBACKS_POOL_MAXSIZE_PER_HOST=20
    )
    warm_up(h, sink.url)
    from django.utils import timezone

    h.insert_tasks(sink.url, [timezone.now()] * args.flood_count)
    finished = CallbackTask.objects.filter(url=sink.url, status__in=FINAL_STATUSES)
    pids = tree(dispatcher.pid)
    done_before, cpu_before, started = finished.count(), cpu_seconds(pids), time.monotonic()
    time.sleep(args.seconds)
    done, used, elapsed = (
        finished.count() - done_before,
        cpu_seconds(pids) - cpu_before,
        time.monotonic() - started,
    )
    h.stop_all()
    clear_run(sink.url)
    return [
        (
            f"one origin at its limit (default 20 in flight), {args.flood_count:,} due",
            f"{done / elapsed:,.0f} callbacks/s",
            f"dispatcher CPU {100 * used / elapsed:.0f} % of a core over {elapsed:.0f} s "
            f"({os.cpu_count()} cores)",
            "",
            "claim cost independent of the backlog",
        )
    ]
