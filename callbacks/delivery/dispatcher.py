"""The dispatcher: claims due callbacks and hands them to django-q2 workers in batches.

One dispatcher leads at a time (a PostgreSQL advisory lock, or a file lock on SQLite); others
wait as standbys and take over when the leader's connection drops. One leader keeps per-host
limits, breaker probes and schedule fires exact without a distributed semaphore; delivery,
the heavy part, scales out over django-q2 workers.

The leader wakes at once on NOTIFY when a task is created, at the due time of the next
delayed task or schedule fire, and otherwise every DISPATCH_IDLE_SECONDS (DISPATCH_POLL_SECONDS
without NOTIFY, on SQLite, or while the targets are full). Each wake-up is one `step()`, which tests
call directly.
"""

import contextlib
import fcntl
import logging
import math
import os
import threading
import time
from datetime import timedelta

import psycopg
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.tasks import async_task

from callbacks import conf, queues, tracing, wakeup
from callbacks.delivery import outcomes, results
from callbacks.delivery.breaker import holding
from callbacks.delivery.claim import lanes, leases, limits, statistics
from callbacks.delivery.claim.candidates import next_claimable_at
from callbacks.delivery.instruments import heartbeats, metrics
from callbacks.models import CallbackTask
from callbacks.selectors import schedule_next_fire_at
from callbacks.services.schedules import fire_due

logger = logging.getLogger(__name__)

# Any constant unique to this application: the key of the leader's advisory lock.
ADVISORY_LOCK_KEY = 0x7C0DE_CA11
DELIVER_FUNC = "callbacks.tasks.deliver_lane"
# How often the leader takes back work whose lease ran out.
REAP_SECONDS = 1.0
# A queue is served while a worker of its cluster beat within this many heartbeats.
SERVED_WITHIN_BEATS = 3


class Leadership:
    """Who leads. PostgreSQL: a session advisory lock held on a connection of its own, which
    also LISTENs for wake-ups; it is released by the server the moment that connection dies.
    SQLite: an exclusive lock on a file next to the database, released when the process dies."""

    def __init__(self):
        self.is_postgres = connection.vendor == "postgresql"
        self._conn: psycopg.Connection | None = None
        self._lock_file = None

    def acquire(self) -> bool:
        if self.is_postgres:
            return self._acquire_postgres()
        return self._acquire_file()

    def _acquire_postgres(self) -> bool:
        if self._conn is not None and not self._conn.closed:
            return True
        conn = psycopg.connect(**wakeup.connection_params(), autocommit=True)
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY]).fetchone()[0]
        if not got:
            conn.close()
            return False
        conn.execute(f"LISTEN {wakeup.CHANNEL}")
        self._conn = conn
        return True

    def _acquire_file(self) -> bool:
        if self._lock_file is not None:
            return True
        handle = open(settings.VAR_DIR / "dispatcher.lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._lock_file = handle
        return True

    @property
    def listens(self) -> bool:
        """Whether NOTIFY wakes this leader (PostgreSQL, leading)."""
        return self._conn is not None

    def wait_for_wakeup(self, timeout: float, stop: "Stop") -> bool:
        """Sleep until NOTIFY (PostgreSQL), the timeout, or stop; True when woken by NOTIFY.

        A select() on the connection's socket and on stop's pipe, rather than psycopg's
        notifies(timeout), which wakes every 0.1 s and does not see stop."""
        if timeout <= 0:
            return False
        if self._conn is None:
            stop.wait(timeout)
            return False
        deadline = time.monotonic() + timeout
        try:
            while not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # Several creations may have notified; one step serves them all. A closed
                # connection raises here: the advisory lock went with it.
                if wakeup.received(self._conn, remaining, interrupt=stop.fileno()):
                    return True
        except (psycopg.Error, OSError):
            logger.warning("dispatcher lost its leader connection; standing down")
            self.release()
            return True
        return False

    def release(self) -> None:
        wakeup.close_quietly(self._conn)
        self._conn = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


class Stop(threading.Event):
    """The request to stop a dispatcher, seen at once by a leader asleep in select(): set() also
    makes a pipe readable that the select watches beside the listening socket. (Waking every half
    second to look was most of an idle leader's wake-ups.) One per process: its pipe stays open."""

    def __init__(self):
        super().__init__()
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)

    def set(self) -> None:
        super().set()
        try:
            os.write(self._write, b"\0")
        except BlockingIOError:  # the pipe is full of earlier requests: readable all the same
            pass

    def fileno(self) -> int:
        return self._read


class Dispatcher:
    def __init__(self, *, name: str | None = None):
        self.name = name or heartbeats.process_name()
        self.leadership = Leadership()
        self._brokers = {}
        self._last_reap = 0.0
        self._last_beat = 0.0
        self.is_leader = False
        # Rate buckets per origin and what the last claim held back (exact: only the leader claims).
        self.targets = limits.TargetLimits()
        # Has the task table analyzed when a backlog arrives that its statistics do not know.
        self._statistics = statistics.DueSetStatistics()
        # The time the last claim read due work up to: what fell due after it, it did not see.
        self._claimed_at = timezone.now()

    # --- one step -----------------------------------------------------------------------
    def step(self) -> int:
        """Take back lost work, claim what is due, hand it to the workers. Returns claims made."""
        now = timezone.now()
        if time.monotonic() - self._last_reap >= REAP_SECONDS:
            self.reap(now=now)
            holding.sweep(now=now)  # hold tasks of open breakers, bury those held too long
            self._last_reap = time.monotonic()
        # Before claiming: a schedule's task due now goes out in this same step.
        fire_due(now=now)
        self._claimed_at = now
        # Backpressure: the claim counts what is queued or running anyway (per-origin limits),
        # and takes no more than brings that to the outstanding limit.
        claims = leases.claim_due(
            limit=conf.get("DISPATCH_BATCH"),
            now=now,
            targets=self.targets,
            max_in_flight=lanes.budget(),
            sendable=lanes.sendable(),
            # Not for queues no live cluster serves: their work would sit in the broker holding
            # slots and budget others need (it waits, due, and /readyz/delivery names the queue).
            served_queues=queues.served_queues(
                now=now, within_seconds=SERVED_WITHIN_BEATS * conf.get("HEARTBEAT_SECONDS")
            ),
        )
        claimed = 0
        for claim in claims:
            self._enqueue(claim)
            claimed += len(claim.task_ids)
        self._statistics.after_claim(work_left=self.targets.saturated or self.targets.full, now=now)
        return claimed

    def _enqueue(self, claim: leases.Claim) -> None:
        """One lane, one django-q2 task: its worker sends the lane's first tasks and refills it."""
        broker = self._brokers.get(claim.queue)
        if broker is None:
            broker = self._brokers[claim.queue] = get_broker(claim.queue)
        ids = [str(task_id) for task_id in claim.task_ids]
        try:
            with _dispatch_span(claim):
                async_task(
                    DELIVER_FUNC, claim.token, ids, claim.rate, claim.tenant_id, claim.origin, broker=broker
                )
            metrics.DISPATCHED_TOTAL.labels(metrics.queue_label(claim.queue)).inc(len(ids))
        except Exception:
            # Broker away: give the work back now rather than when the lease runs out.
            logger.exception("enqueue to queue %r failed; giving %d tasks back", claim.queue, len(ids))
            leases.release_claimed(token=claim.token, task_ids=ids, note="broker unavailable; given back")
            lanes.end(claim.token)

    def reap(self, *, now=None) -> int:
        """Bring back work whose lease ran out. Returns how many tasks came back."""
        now = now or timezone.now()
        lanes.expire(now=now)
        count = leases.requeue_expired_queued(now=now)
        lost = leases.expired_running(now=now)
        if lost:
            outcomes.record(
                [
                    outcomes.Finished(
                        task=task,
                        token=task.locked_by,
                        result=results.interrupted_result(
                            task,
                            error="the worker sending this attempt vanished (killed or crashed); lease expired",
                        ),
                    )
                    for task in lost
                ],
                now=now,
            )
            logger.warning(
                "%d callbacks were interrupted (their worker vanished); retry policy applied", len(lost)
            )
        return count + len(lost)

    # --- the loop -----------------------------------------------------------------------
    def run(self, stop: Stop) -> None:
        logger.info("%s started", self.name)
        was_leader = False
        while not stop.is_set():
            self._housekeeping()
            try:
                leader = self.leadership.acquire()
            except (psycopg.Error, OSError) as exc:
                logger.warning("cannot reach the database to take the lead: %s", exc)
                stop.wait(1.0)
                continue
            self.is_leader = leader
            if not leader:
                stop.wait(conf.get("STANDBY_POLL_SECONDS"))
                continue
            if not was_leader:
                logger.info("%s is the leader", self.name)
                was_leader = True
            try:
                claimed = self.step()
            except DatabaseError:
                logger.exception("dispatch step failed; retrying")
                close_old_connections()
                self.leadership.release()
                was_leader = False
                stop.wait(1.0)
                continue
            if claimed >= conf.get("DISPATCH_BATCH"):
                continue  # a backlog: keep claiming
            self._sleep(self._sleep_seconds(), stop)
        self.leadership.release()
        logger.info("%s stopped", self.name)

    def _housekeeping(self) -> None:
        """The heartbeat, standbys' too: /readyz wants a dispatcher alive. (Retention is not the
        leader's job: the worker cluster's scheduler runs it, see monitoring.retention.)"""
        now = time.monotonic()
        try:
            if now - self._last_beat >= conf.get("HEARTBEAT_SECONDS"):
                self._last_beat = now
                heartbeats.beat(role=heartbeats.DISPATCHER, name=self.name, info={"leader": self.is_leader})
        except DatabaseError:
            logger.warning("dispatcher housekeeping failed", exc_info=True)
            close_old_connections()

    def _sleep_seconds(self) -> float:
        poll = conf.get("DISPATCH_POLL_SECONDS")
        if self.targets.full:
            # As many slots granted as the workers may hold: only a lane narrowing (it NOTIFYs)
            # makes room. When the next task is due would not change that; during a burst,
            # asking was a quarter of the dispatcher's CPU (python -m bench.profile --py-spy).
            return poll
        idle = min(self._idle_seconds(poll), self._until_lease_end())
        # Due work the targets have no room for: a lane narrowing or ending (it NOTIFYs), the
        # next rate token or the poll frees it. Claiming again sooner would only spin.
        held = min(idle, poll, self.targets.retry_in if self.targets.retry_in is not None else poll)
        now = timezone.now()
        if self.targets.holding:
            # Work due at the claim is known to wait, so only a task falling due after the claim
            # may end the sleep sooner. It is looked for past the claim's time (past now would
            # miss one falling due in between, seen by no claim), which also spares reading
            # through the due end of the index, where the entries of every task sent since the
            # last vacuum still lie: at every sleep of a burst that was a fifth of PostgreSQL's
            # CPU (python -m bench.profile --origins 64).
            return _seconds_until(self._due_since_claim(idle), now, bound=held)
        # Schedules fire after the step's own fire time, not after now: one falling due while the
        # step claimed would otherwise be seen by neither, and wait for the idle poll.
        next_due = _earliest(_next_claimable_at(idle), schedule_next_fire_at(after=self._claimed_at))
        if next_due is None:
            return idle
        if self.targets.saturated and next_due <= self._claimed_at:
            # The claim read all that was due and left this one (its queue has no cluster
            # serving it): only a task falling due since may end the sleep sooner.
            return _seconds_until(self._due_since_claim(idle), now, bound=held)
        return _seconds_until(next_due, now, bound=idle)

    def _due_since_claim(self, within: float):
        return _earliest(
            _next_claimable_at(within, after=self._claimed_at), schedule_next_fire_at(after=self._claimed_at)
        )

    def _until_lease_end(self) -> float:
        """While work is handed out, the leader looks for leases run out at least every quarter of
        the running lease, and when the earliest lease ends: a killed worker's callbacks are back
        within about a lease of its death, not at the idle poll. (Starting a task and renewing its
        lease NOTIFY no one: a task claimed now may be started a moment later with a short lease.)
        Never sooner than the next reap may run."""
        lease_end = leases.next_lease_end()
        if lease_end is None:
            return math.inf
        until_reap = REAP_SECONDS - (time.monotonic() - self._last_reap)
        until_end = (lease_end - timezone.now()).total_seconds()
        return max(until_reap, min(until_end, conf.get("RUNNING_LEASE_SECONDS") / 4), 0.0)

    def _idle_seconds(self, poll: float) -> float:
        """The longest sleep when nothing is due sooner. A listening leader is woken by NOTIFY for
        whatever is created, released or finished; on its own it must only notice what time
        brings: a delayed task, a schedule fire, a breaker's probe (all asked for above, within
        this bound) and a lease run out. Without NOTIFY (SQLite) it polls."""
        if not self.leadership.listens:
            return poll
        return max(poll, conf.get("DISPATCH_IDLE_SECONDS"))

    def _sleep(self, seconds: float, stop: Stop) -> None:
        """Sleep until woken or `seconds` are over, beating on time meanwhile: an idle leader
        sleeps longer than a heartbeat, and a heartbeat needs no step."""
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            until_beat = conf.get("HEARTBEAT_SECONDS") - (time.monotonic() - self._last_beat)
            if remaining <= 0 or self.leadership.wait_for_wakeup(min(remaining, max(0.0, until_beat)), stop):
                return
            self._housekeeping()


def _dispatch_span(claim: leases.Claim):
    """When traces are exported: a span of the lane handed to the broker, linked to the traces of its
    tasks that continue one (a lane carries tasks of many traces, so it is a child of none)."""
    if not tracing.enabled():
        return contextlib.nullcontext()
    links = list(
        CallbackTask.objects.filter(id__in=claim.task_ids)
        .exclude(traceparent="")
        .values_list("traceparent", flat=True)
    )
    attributes = {
        "callbacks.queue": claim.queue,
        "callbacks.tasks": len(claim.task_ids),
        "callbacks.lane": claim.token,
    }
    return tracing.span("callbacks dispatch", kind="producer", attributes=attributes, links=links)


def _seconds_until(at, now, *, bound: float) -> float:
    return bound if at is None else max(0.0, min(bound, (at - now).total_seconds()))


def _earliest(*times):
    present = [at for at in times if at is not None]
    return min(present) if present else None


def _next_claimable_at(within: float, *, after=None):
    """When the next task becomes claimable (after `after`, when given), looking no further than the
    sleep's bound. Tasks due but held back (a paused queue, an earlier task of their ordering key
    unfinished) do not count: they would make the loop spin; their release wakes it (NOTIFY) or
    the poll finds it."""
    return next_claimable_at(timezone.now() + timedelta(seconds=within), after=after)
