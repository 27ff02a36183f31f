"""The worker side: deliver the batches the dispatcher hands to django-q2.

Each django-q2 worker process keeps one DeliveryWorker: a bounded thread pool
(CALLBACKS_CONCURRENCY callbacks in flight per process, through one tuned Session) and a
recorder thread that writes finished attempts in bulk. A django-q2 task carries a batch; it
returns once every callback of the batch is in the pool, so one slow receiver holds one slot,
not a whole batch, and the process keeps taking work while slots are free.

At process exit (django-q2 recycling a worker, or the cluster stopping) callbacks in flight
finish and are recorded before the process goes.
"""

import logging
import math
import os
import queue
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections, connection
from django.utils import timezone

from callbacks import bulk, conf, queues, tracing, wakeup
from callbacks.delivery import executor, http, outcomes, results, shutdown
from callbacks.delivery.claim import lanes, leases
from callbacks.delivery.instruments import heartbeats, metrics, multiproc
from callbacks.models import Outcome, Tenant

logger = logging.getLogger(__name__)

# Attempts waiting to be recorded beyond this trigger a flush before the interval is up.
_FLUSH_AT = 500
# Sender threads are started only as needed, up to this (CONCURRENCY's own maximum).
MAX_THREADS = 5000
# Put by shutdown into the finished queue: a recorder with nothing to record waits there until its
# next heartbeat, and must look at once.
_WAKE = object()


class Slots:
    """A counting semaphore whose size can change while in use (concurrency changes at run time).
    Shrinking never interrupts anything: it only makes later acquisitions wait longer."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self._changed = threading.Condition()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        with self._changed:
            if blocking:
                if not self._changed.wait_for(lambda: self.used < self.limit, timeout):
                    return False
            elif self.used >= self.limit:
                return False
            self.used += 1
            return True

    def release(self) -> None:
        with self._changed:
            self.used -= 1
            self._changed.notify()

    def take(self, count: int) -> None:
        """Take `count` slots whether or not they are free (SenderShares says when a tenant may)."""
        with self._changed:
            self.used += count

    def resize(self, limit: int) -> None:
        with self._changed:
            if limit != self.limit:
                self.limit = limit
                self._changed.notify_all()


class SenderShares:
    """How a process's sender slots are shared among the tenants of its lanes, as one pass of the lane
    driver sees them. Each tenant with a lane here has an equal share of the slots. A tenant within
    its share may always start its sends, even while others' sends fill the process; a tenant at or
    over its share starts none while another tenant's lane waits here. So one tenant's volume or slow
    receivers never make another's callbacks wait for a thread: its sends beyond its share end by
    themselves and are not replaced. Hence a process may briefly have up to twice its slots in flight
    (the shares, beside what a tenant started while it was alone here), never more.

    A snapshot of what each tenant holds (sends ending meanwhile only leave more room than it says);
    the free slots are read again at each step."""

    def __init__(self, lane_runs, *, limit: int, used: int):
        self.free = max(0, limit - used)
        self.held: Counter = Counter()
        self.waiting = set()  # tenants whose lanes want slots: first tasks, or room to refill
        now = time.monotonic()
        for lane in lane_runs:
            self.held[lane.tenant_id] += lane.in_flight
            # A lane whose time is up takes nothing more, whatever room it has.
            if lane.first or (lane.free() and not lane.expired(now)):
                self.waiting.add(lane.tenant_id)
        self.share = math.ceil(limit / max(1, len(self.held)))

    def room(self, tenant_id) -> int:
        """How many sends a lane of this tenant may start now."""
        own = max(0, self.share - self.held[tenant_id])
        if self.waiting - {tenant_id}:
            return own
        return max(self.free, own)

    def took(self, tenant_id, count: int) -> None:
        self.held[tenant_id] += count
        self.free = max(0, self.free - count)


# A free slot of a lane waits this long for others to free up before it is refilled on its own: one
# refill statement for several slots, yet a slow receiver's slots are not left idle.
REFILL_PAUSE = 0.01
# A lane whose time is up gives its slots back together: it waits up to this long after its time for
# its sends to end before it narrows to those still out. Narrowed a send at a time, it woke the leader
# at each step, which granted each slot freed as a lane of its own: an origin's limit came to be
# spread over lanes of a slot or a few, each refilled every callback or two (with the clock of
# each its own, they never came back together). A fast receiver's sends end well within it; a slow
# receiver's free slots wait no longer than this.
ENDING_PAUSE = 0.25
# The lane listener's longest wait on its connection (shutdown interrupts it through a pipe).
_LISTEN_SLICE = 5.0
# How long the lane driver keeps a tenant's row; a rotated signing secret keeps the previous one
# valid for its overlap, so a few seconds on the old one harm no receiver.
TENANT_SECONDS = 2.0


class LaneRun:
    """A lane as its worker holds it: the tasks the leader claimed for it not yet started, its width
    (as last read in the database) and its sends in flight. Sends start only within the width; the
    width only narrows. A lane granted a rate also starts no more than its token bucket holds (it
    begins empty: the leader's claim paid for the first tasks). Guarded by the worker's lock."""

    def __init__(
        self, token: str, task_ids: list, rate: float | None = None, tenant_id=None, origin: str | None = None
    ):
        self.token = token
        self.tenant_id = tenant_id
        self.origin = origin
        self.first = list(task_ids)
        self.width = len(task_ids)
        self.in_flight = 0
        self.started = time.monotonic()
        self.free_since: float | None = None
        self.rate = rate
        self._tokens, self._tokens_at = 0.0, self.started
        # Lingering: its last refill came back short and kept its slots (`waiting`), when that was,
        # since when its refills find nothing at all (None: the last found some), when the next task of
        # its key falls due, and whether a task to its origin was created since its last refill.
        self.waiting = False
        self.short_at = 0.0
        self.idle_since: float | None = None
        self.wake_at: float | None = None
        self.woken = False

    def tokens(self, now: float) -> float:
        if self.rate is None:
            return float("inf")
        return min(max(1.0, self.rate), self._tokens + (now - self._tokens_at) * self.rate)

    def may_start(self, now: float) -> int:
        """How many sends it may start now: its free slots, and whole tokens if paced."""
        if self.rate is None:
            return self.free()
        return min(self.free(), math.floor(self.tokens(now)))

    def first_started(self, now: float) -> None:
        """Its first tasks are all out: the leader's claim paid for them, so a paced lane's bucket
        starts empty from now, not from when the lane arrived (a lane waiting for sender threads or a
        slow start would otherwise send its tokens of that wait on top of the first burst)."""
        self._tokens, self._tokens_at = 0.0, now

    def spend(self, count: int, now: float) -> None:
        if self.rate is not None:
            self._tokens, self._tokens_at = self.tokens(now) - count, now

    def free(self) -> int:
        return max(0, self.width - self.in_flight)

    def expired(self, now: float) -> bool:
        """Its time is up: it takes no more tasks and narrows to what it has out."""
        return now - self.started >= conf.get("LANE_SECONDS")

    def ending_until(self, now: float) -> float | None:
        """While its time is up and sends are out, when it narrows at the latest (ENDING_PAUSE): until
        then it keeps its width, and narrows at once when its last send ends. None otherwise."""
        if not self.in_flight or not self.expired(now):
            return None
        until = self.started + conf.get("LANE_SECONDS") + ENDING_PAUSE
        return until if now < until else None

    def linger_ends(self, linger: float) -> float:
        """When a waiting lane gives its slots up: a linger after its refills last found a task, or its
        time."""
        idle_since = self.short_at if self.idle_since is None else self.idle_since
        return min(idle_since + linger, self.started + conf.get("LANE_SECONDS"))

    def due_in(self, now: float, linger: float = 0.0) -> float | None:
        """Seconds until this lane wants a refill (0: now), None while it has no room."""
        if self.first or self.width == 0:
            return None
        ending = self.ending_until(now)
        if ending is not None:
            return ending - now
        if self.waiting:
            # Nothing more of its key was due: sends ending bring nothing new; a creation to its
            # origin, its key's next due time or the linger's end (which ends it) does.
            if not self.free():
                return None
            wake = self.linger_ends(linger)
            if self.wake_at is not None:
                # Tasks falling due one by one (a backlog spread over time) are taken a pause's worth
                # at a time, not a statement each.
                wake = min(wake, max(self.wake_at, self.short_at + REFILL_PAUSE))
            wait = 0.0 if self.woken else max(0.0, wake - now)
        elif not self.in_flight or self.free() >= max(1, self.width // 2):
            wait = 0.0
        elif self.free_since is None:
            return None
        else:
            wait = max(0.0, self.free_since + REFILL_PAUSE - now)
        tokens = self.tokens(now)
        if tokens < 1.0 and not self.expired(now):
            wait = max(wait, (1.0 - tokens) / self.rate)  # the next token
        return wait


class DeliveryWorker:
    def __init__(self, *, concurrency: int, flush_seconds: float, name: str, follow_settings: bool = False):
        self.name = name
        self._flush_seconds = flush_seconds
        # The process's own worker follows CONCURRENCY as operators change it at run time.
        self._follow_settings = follow_settings
        self._slots = Slots(concurrency)
        # Threads are made only as needed; the semaphore, which can be resized at run time,
        # is what bounds callbacks in flight.
        self._pool = ThreadPoolExecutor(
            max_workers=MAX_THREADS,
            thread_name_prefix="callback-sender",
            initializer=conf.forbid_database_in_this_thread,
        )
        self._finished: queue.SimpleQueue[outcomes.Finished] = queue.SimpleQueue()
        self._state = threading.Condition()
        self._active = {}  # task id -> (task, claim token): the attempts under way
        self._in_flight_shown: dict[str, int] = {}  # the in-flight gauge as last set, per queue label
        self._in_flight_shown_at = 0.0
        self._lanes: dict[str, LaneRun] = {}  # token -> the lanes this process holds
        self._tenants: dict = {}  # tenant id -> (tenant, when read), for the lane driver
        self._unrecorded = 0  # sent, not yet written
        # (tenant id, url) answered 410 here and not yet recorded: the tasks started meanwhile (a lane
        # refills the moment a response is in) read no mark in the database yet.
        self._heard_gone: set = set()
        self._stopping = threading.Event()
        self._closed = threading.Event()
        # Lanes linger only where creations can wake them: PostgreSQL's NOTIFY.
        self._hears_creations = connection.vendor == "postgresql"
        self._recorder = threading.Thread(target=self._record_loop, name="callback-recorder", daemon=True)
        self._recorder.start()
        self._lane_driver = threading.Thread(target=self._drive_lanes, name="lane-driver", daemon=True)
        self._lane_driver.start()
        if self._hears_creations:
            # Written to at shutdown: the listener's wait ends at once and it closes its connection.
            self._listener_stop = os.pipe()
            self._listener = threading.Thread(target=self._listen_for_due, name="lane-listener", daemon=True)
            self._listener.start()

    # --- the django-q2 task's side: lanes ----------------------------------------------
    def deliver_lane(
        self,
        token: str,
        task_ids: list,
        rate: float | None = None,
        tenant_id: str | None = None,
        origin: str | None = None,
    ) -> int:
        """Take a lane the leader granted. The lane driver sends its first tasks, then refills it as
        its sends end, until it narrows to nothing; this returns at once, so the django-q2 worker
        process keeps taking lanes while they run."""
        with self._state:
            self._lanes[token] = LaneRun(token, task_ids, rate, tenant_id, origin)
            self._state.notify_all()
        return len(task_ids)

    def lanes_held(self) -> int:
        return len(self._lanes)

    def _linger_seconds(self) -> float:
        """How long a lane with nothing due keeps its slots here (0: it narrows at once)."""
        return conf.get("LANE_LINGER_SECONDS") if self._hears_creations else 0.0

    def _listen_for_due(self) -> None:
        """A connection of its own LISTENs for tasks created due now (callbacks.wakeup.notify_due) and
        wakes the lingering lanes of their origins; the lane driver refills them at once. A wake-up
        lost while the connection is remade costs at most the linger: the lane then ends, and the
        leader claims what it left."""
        listener = wakeup.PostgresListener(wakeup.CHANNEL, "")
        while not self._closed.is_set():
            payloads = listener.payloads(_LISTEN_SLICE, interrupt=self._listener_stop[0])
            if payloads == []:
                continue
            origins = {wakeup.ANY_ORIGIN} if payloads is None else wakeup.due_origins(payloads)
            if not origins:
                continue
            with self._state:
                woken = [
                    lane
                    for lane in self._lanes.values()
                    if lane.origin in origins or wakeup.ANY_ORIGIN in origins or lane.origin is None
                ]
                for lane in woken:
                    lane.woken = True
                if woken:
                    self._state.notify_all()
        listener.close()

    def _drive_lanes(self) -> None:
        """One thread (one database connection) for every lane of the process: starts their first
        tasks as process slots free up, refills them, ends them."""
        failures = 0
        while not self._closed.is_set():
            work, shares = self._lanes_ready()
            try:
                # Each step is a statement: the lanes of tenants holding fewest slots go first, so a
                # tenant's one lane does not wait behind the steps of another's many.
                for lane in sorted(work, key=lambda lane: shares.held[lane.tenant_id]):
                    self._step(lane, shares)
                failures = 0
            except Exception:
                # The database is away or something unforeseen: the lanes expire and their tasks'
                # leases bring them back if this goes on; nothing is lost.
                failures += 1
                logger.exception("driving %d lanes failed (try %d); will retry", len(work), failures)
                close_old_connections()
                time.sleep(min(5.0, 0.1 * 2**failures))
        connection.close()

    def _lanes_ready(self) -> tuple[list[LaneRun], SenderShares | None]:
        """Wait until some lane has work: first tasks and a slot its tenant may take, room to refill,
        or (stopping) something to give back."""
        with self._state:
            while not self._closed.is_set():
                now = time.monotonic()
                stopping = self.is_stopping()
                shares = SenderShares(self._lanes.values(), limit=self._slots.limit, used=self._slots.used)
                ready, soonest = [], 0.2
                linger = self._linger_seconds()
                for lane in self._lanes.values():
                    has_slot = shares.room(lane.tenant_id) > 0
                    if lane.first:
                        if stopping or has_slot:
                            ready.append(lane)
                        continue
                    wait = 0.0 if stopping and not lane.in_flight else lane.due_in(now, linger)
                    if wait == 0.0 and (stopping or has_slot or lane.expired(now)):
                        ready.append(lane)
                    elif wait is not None:
                        soonest = min(soonest, wait)
                if ready:
                    return ready, shares
                # No lanes: sleep until one is delivered (deliver_lane notifies), not on a timer.
                self._state.wait(soonest if self._lanes else None)
            return [], None

    def _take_slots(self, lane: LaneRun, shares: SenderShares, want: int) -> int:
        # Sends end while the driver steps its lanes (by the hundred a second to a fast receiver):
        # the slots they free are taken in this same pass, not at the next one.
        shares.free = max(0, self._slots.limit - self._slots.used)
        taken = max(0, min(want, shares.room(lane.tenant_id)))
        self._slots.take(taken)
        shares.took(lane.tenant_id, taken)
        return taken

    def _step(self, lane: LaneRun, shares: SenderShares) -> None:
        if lane.first:
            self._start_first(lane, shares)
            return
        now = time.monotonic()
        taking = not self.is_stopping() and not lane.expired(now)
        taken = self._take_slots(lane, shares, lane.may_start(now)) if taking else 0
        # A lane with nothing of its key due keeps its width for what comes next, until its linger
        # is over (then this refill narrows it as any dry refill does).
        linger = self._linger_seconds()
        keep = lane.width if linger and not (lane.waiting and now >= lane.linger_ends(linger)) else 0
        with self._state:
            lane.woken = False  # a creation heard from here on wakes it again
            in_flight = lane.in_flight
        try:
            refill = lanes.refill(
                token=lane.token,
                want=taken,
                in_flight=in_flight,
                taking=taking,
                now=timezone.now(),
                keep=keep,
            )
        except BaseException:
            self._give_back_slots(taken)
            raise
        self._give_back_slots(taken - len(refill.tasks))
        for task in refill.tasks:
            task.tenant = self._tenant(task.tenant_id)
        with self._state:
            lane.spend(len(refill.tasks), now)
            lane.width = refill.width
            lane.free_since = None
            got = len(refill.tasks)
            if taken and got < taken and refill.width > in_flight + got:
                # Fewer of its key due than it had room for, and it kept its slots: it lingers.
                lane.waiting, lane.short_at = True, now
                lane.idle_since = None if got else (lane.idle_since or now)
                lane.wake_at = _monotonic_at(refill.next_due, now)
            else:
                lane.waiting, lane.idle_since, lane.wake_at = False, None, None
            if lane.width == 0:
                self._lanes.pop(lane.token, None)
                self._state.notify_all()
        self._submit(lane, refill.tasks)

    def _tenant(self, tenant_id):
        """The tenant of refilled tasks (signing secrets, breaker policy), read again after
        TENANT_SECONDS: a refill runs every few callbacks and must not read it each time."""
        cached = self._tenants.get(tenant_id)
        if cached is None or time.monotonic() - cached[1] > TENANT_SECONDS:
            # As start_claimed loads them (a sealed secret that cannot be opened is said, not raised).
            cached = self._tenants[tenant_id] = (
                bulk.in_bulk(Tenant, [tenant_id])[tenant_id],
                time.monotonic(),
            )
        return cached[0]

    def _start_first(self, lane: LaneRun, shares: SenderShares) -> None:
        """The tasks the leader claimed for the lane, as many as its tenant may take slots."""
        if self.is_stopping():
            # What was not started goes back to the queue at once.
            with self._state:
                remaining, lane.first = lane.first, []
                lane.width = lane.in_flight
            leases.release_claimed(token=lane.token, task_ids=remaining, note="worker stopping; given back")
            return
        taken = self._take_slots(lane, shares, len(lane.first))
        chunk = lane.first[:taken]
        try:
            tasks = leases.start_claimed(token=lane.token, task_ids=chunk)
        except BaseException:
            self._give_back_slots(taken)
            raise
        self._give_back_slots(taken - len(tasks))  # cancelled or reclaimed meanwhile
        with self._state:
            del lane.first[:taken]
            if not lane.first:
                lane.first_started(time.monotonic())
        self._submit(lane, tasks)

    def _submit(self, lane: LaneRun, tasks) -> None:
        for task in tasks:
            with self._state:
                idle = not self._active
                self._active[task.id] = (task, lane.token)
                lane.in_flight += 1
            if idle:
                # An idle recorder waits until its next heartbeat: wake it, so that it renews the
                # short leases of what now runs in time (every quarter of RUNNING_LEASE_SECONDS).
                self._finished.put(_WAKE)
            self._pool.submit(self._send, task, lane)

    def _wait_for_a_slot(self) -> bool:
        """Take one slot; False, holding none, once the worker or its cluster is stopping."""
        while not self.is_stopping():
            if self._slots.acquire(timeout=0.2):
                if self.is_stopping():
                    self._slots.release()
                    return False
                return True
        return False

    def is_stopping(self) -> bool:
        return self._stopping.is_set() or shutdown.stopping()

    def _give_back_slots(self, count: int) -> None:
        for _ in range(count):
            self._slots.release()

    def _send(self, task, lane: "LaneRun") -> None:
        try:
            with self._state:
                task.url_gone = task.url_gone or (task.tenant_id, task.url) in self._heard_gone
            try:
                result = executor.send_attempt(task, attempt=task.attempts)
            except Exception as exc:
                # send_attempt records every failure itself; should it raise all the same, the attempt
                # is recorded now: an exception lost in the thread pool would leave the task running
                # until its lease ran out, then be taken for a worker that vanished.
                logger.exception("sending task %s raised", task.id)
                result = results.internal_error_result(task, error=f"internal error: {type(exc).__name__}")
            with self._state:
                if self._active.pop(task.id, None) is None:
                    return  # already recorded as interrupted at shutdown: this late result is moot
                self._unrecorded += 1
                if _answered_gone(result):
                    self._heard_gone.add((task.tenant_id, task.url))
            self._finished.put(
                outcomes.Finished(task=task, token=lane.token, result=result, worker=self.name)
            )
        finally:
            self._slots.release()
            with self._state:
                self._active.pop(task.id, None)  # also when sending raised (it should not)
                # The lane's slot is free now, before the attempt is recorded.
                lane.in_flight -= 1
                if lane.free_since is None:
                    lane.free_since = time.monotonic()
                self._state.notify_all()

    # --- recording ----------------------------------------------------------------------
    def _record_loop(self) -> None:
        # Shown from the start, at zero: a gauge that appears only once the worker is busy reads as
        # missing, not as idle, and the recorder may never see an attempt under way (all ended between
        # two of its looks).
        try:
            metrics.CALLBACKS_IN_FLIGHT.labels(metrics.queue_label(queues.served_here())).set(0)
        except Exception:
            logger.warning("showing the in-flight gauge failed", exc_info=True)
        pending: list[outcomes.Finished] = []
        last_flush = time.monotonic()
        last_beat = last_renewal = last_running_renewal = 0.0
        failures = 0
        while not (self._closed.is_set() and not pending):
            if time.monotonic() - last_beat >= conf.get("HEARTBEAT_SECONDS"):
                last_beat = time.monotonic()
                self._beat()
            if time.monotonic() - last_renewal >= conf.get("LANE_LEASE_SECONDS") / 3:
                last_renewal = time.monotonic()
                self._renew_lanes()
            if time.monotonic() - last_running_renewal >= _running_renewal_seconds():
                last_running_renewal = time.monotonic()
                self._renew_running(pending)
            if self._follow_settings:
                self._follow_runtime_settings()
            wait = self._record_wait(pending, last_beat)
            if self._active or pending:
                until_renewal = _running_renewal_seconds() - (time.monotonic() - last_running_renewal)
                wait = max(self._flush_seconds, min(wait, until_renewal))
            self._take_finished(pending, timeout=wait)
            self._show_in_flight()
            if not pending:
                continue
            if len(pending) < _FLUSH_AT and time.monotonic() - last_flush < self._flush_seconds:
                continue
            left = self._record(pending)
            if left:
                # The database is away (restart, network): keep the results and try again.
                # Nothing is lost; if this process dies meanwhile, the leases bring the tasks back.
                failures += 1
                logger.warning("recording %d attempts failed (try %d); will retry", len(left), failures)
                close_old_connections()
                time.sleep(min(5.0, 0.1 * 2**failures))
            else:
                failures = 0
            recorded = len(pending) - len(left)
            # Those left are the batch's tail (callbacks.delivery.outcomes.record_each). Written now:
            # the database's mark answers for the tasks started from here on (and a clear of it is not
            # overridden by this process's memory).
            gone = {
                (item.task.tenant_id, item.task.url)
                for item in pending[:recorded]
                if _answered_gone(item.result)
            }
            pending = left
            last_flush = time.monotonic()
            with self._state:
                self._unrecorded -= recorded
                self._heard_gone -= gone
                self._state.notify_all()
        connection.close()  # this thread's own connection; nothing else will close it

    def _show_in_flight(self) -> None:
        """The in-flight gauge, per queue, counted from the attempts under way: set by the recorder (at
        most once a flush interval while some are, at once when the last has ended), not raised and
        lowered by each sender (in multiprocess mode every change is a write to the metrics file under
        its lock, two per callback)."""
        busy = bool(self._active)
        if busy and time.monotonic() - self._in_flight_shown_at < self._flush_seconds:
            return
        if not busy and not self._in_flight_shown:
            return
        with self._state:
            by_queue = Counter(task.queue for task, _token in self._active.values())
        shown = Counter()
        for name, count in by_queue.items():
            shown[metrics.queue_label(name)] += count
        for label in self._in_flight_shown.keys() - shown.keys():
            metrics.CALLBACKS_IN_FLIGHT.labels(label).set(0)
        for label, count in shown.items():
            if self._in_flight_shown.get(label) != count:
                metrics.CALLBACKS_IN_FLIGHT.labels(label).set(count)
        self._in_flight_shown, self._in_flight_shown_at = dict(shown), time.monotonic()

    def _record(self, pending: list) -> list:
        """Records the attempts; returns those left because the database is away."""
        try:
            outcomes.record(pending)
            return []
        except Exception as exc:
            logger.exception("recording %d attempts failed", len(pending))
            if outcomes.database_away(exc):
                return pending
        # Refused for what they hold: one bad record must not hold up the others.
        return outcomes.record_each(pending)

    def _record_wait(self, pending: list, last_beat: float) -> float:
        """How long the recorder waits for finished attempts: the flush interval while some wait
        to be written; with none, until the next heartbeat (waking every flush interval for
        nothing was most of an idle worker's CPU)."""
        if pending:
            return self._flush_seconds
        until_beat = conf.get("HEARTBEAT_SECONDS") - (time.monotonic() - last_beat)
        return max(self._flush_seconds, until_beat)

    def _take_finished(self, pending: list, *, timeout: float) -> None:
        """Wait up to `timeout` for a finished attempt, then take all there are, up to a flush."""
        try:
            finished = self._finished.get(timeout=timeout)
            while True:
                if finished is not _WAKE:
                    pending.append(finished)
                if len(pending) >= _FLUSH_AT:
                    return
                finished = self._finished.get_nowait()
        except queue.Empty:
            pass

    def _record_unfinished_as_interrupted(self) -> None:
        with self._state:
            unfinished = list(self._active.values())
            self._active.clear()
        if not unfinished:
            return
        logger.warning(
            "grace period over: %d callbacks still in flight are recorded as interrupted", len(unfinished)
        )
        now = timezone.now()
        try:
            outcomes.record(
                [
                    outcomes.Finished(
                        task=task,
                        token=token,
                        result=results.interrupted_result(
                            task, error="worker stopped before the attempt ended"
                        ),
                        worker=self.name,
                    )
                    for task, token in unfinished
                ],
                now=now,
            )
        except Exception:
            logger.exception("recording interrupted attempts failed; their leases will bring them back")

    @property
    def concurrency(self) -> int:
        return self._slots.limit

    def _follow_runtime_settings(self) -> None:
        try:
            conf.refresh_if_stale()
        except Exception:
            logger.warning("reading run-time settings failed", exc_info=True)
        self._slots.resize(conf.get("CONCURRENCY"))

    def _renew_lanes(self) -> None:
        """Lanes whose sends take long are not refilled for a while; their lease must not run out."""
        with self._state:
            tokens = list(self._lanes)
        try:
            lanes.renew(tokens, now=timezone.now())
        except Exception:
            logger.warning("renewing %d lanes failed", len(tokens), exc_info=True)
            close_old_connections()

    def _renew_running(self, pending: list) -> None:
        """Attempts under way, and those sent but not yet recorded, keep their short leases: only a
        dead worker's callbacks come back (after RUNNING_LEASE_SECONDS), never a live one's."""
        with self._state:
            held = [(task.id, token) for task, token in self._active.values()]
        held += [(finished.task.id, finished.token) for finished in pending]
        if not held:
            return
        try:
            leases.renew_running(held, now=timezone.now())
        except Exception:
            logger.warning("renewing the leases of %d callbacks failed", len(held), exc_info=True)
            close_old_connections()

    def _beat(self) -> None:
        """Tell /readyz this process is alive, with its connection pool's state."""
        # The queue its cluster serves: the leader claims only for queues someone serves, and metrics
        # may label by it (queues.operator_queues).
        info = {"in_flight": len(self._active), "lanes": len(self._lanes), "queue": queues.served_here()}
        pool = _pool_state()
        if pool is not None:
            info["pool"] = pool
        try:
            heartbeats.beat(role=heartbeats.WORKER, name=self.name, info=info)
        except Exception:
            logger.warning("worker heartbeat failed", exc_info=True)
            close_old_connections()

    # --- lifecycle ----------------------------------------------------------------------
    def wait_idle(self, timeout: float) -> bool:
        """Block until every lane has ended or lingers with nothing to send, nothing is in flight and
        everything sent is recorded."""
        deadline = time.monotonic() + timeout
        with self._state:
            while self._working_lanes() or self._active or self._unrecorded:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._state.wait(remaining)
        return True

    def _working_lanes(self) -> list[LaneRun]:
        return [lane for lane in self._lanes.values() if not (lane.waiting and not lane.in_flight)]

    def _wait_for_lanes_to_end(self, *, timeout: float) -> None:
        """Stopping, the lane driver ends each lane once nothing of it is in flight; a lane it could
        not end in time frees its slots when its lease runs out."""
        deadline = time.monotonic() + timeout
        with self._state:
            while self._lanes and time.monotonic() < deadline:
                self._state.wait(0.05)

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop starting new callbacks, let those in flight finish, record them.

        Attempts still under way after the grace period are recorded as interrupted, so the
        retry policy takes them up at once and no task is left `running` until its lease expires.
        """
        self._stopping.set()
        grace = conf.get("SHUTDOWN_GRACE_SECONDS") if timeout is None else timeout
        if not self.wait_idle(grace):
            self._record_unfinished_as_interrupted()
            # Unblock their threads, or the interpreter would wait for them at exit.
            http.abort_in_flight()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._wait_for_lanes_to_end(timeout=2.0)
        self._closed.set()
        with self._state:
            self._state.notify_all()  # the lane driver may be waiting for a lane
        self._finished.put(_WAKE)
        self._recorder.join(timeout=5)
        self._lane_driver.join(timeout=5)
        if self._hears_creations:
            os.write(self._listener_stop[1], b"\0")
            self._listener.join(timeout=5)
        # A forked worker leaves without atexit handlers: its last attempts' spans go out now.
        tracing.flush()


def _monotonic_at(moment, now: float) -> float | None:
    """A database time (the next due task) on this process's monotonic clock."""
    if moment is None:
        return None
    return now + (moment - timezone.now()).total_seconds()


def _answered_gone(result) -> bool:
    return result.outcome == Outcome.GONE and result.status_code is not None


def _running_renewal_seconds() -> float:
    """Four renewals a lease: one late or failed renewal does not let a live worker's lease run out."""
    return conf.get("RUNNING_LEASE_SECONDS") / 4


def _pool_state() -> dict | None:
    """This process's connection pools, exported as livesum gauges."""
    try:
        state = http.pool_state()
        http2 = state["http2"]
        metrics.POOL_CONNECTIONS.labels("active", "1.1").set(state.get("active", 0))
        metrics.POOL_CONNECTIONS.labels("idle", "1.1").set(state.get("idle", 0))
        metrics.POOL_CONNECTIONS.labels("active", "2").set(http2["active"])
        metrics.POOL_CONNECTIONS.labels("idle", "2").set(http2["idle"])
        metrics.REQUESTS_IN_FLIGHT.labels("1.1").set(state.get("active", 0))
        metrics.REQUESTS_IN_FLIGHT.labels("2").set(http2["streams"])
        metrics.POOL_HOSTS.set(state.get("pools", 0))
    except Exception:
        logger.exception("reading the connection pool state failed")
        return None
    return {**{key: state.get(key, 0) for key in ("active", "idle", "pools")}, "http2": state["http2"]}


_worker: DeliveryWorker | None = None
_worker_pid: int | None = None
_worker_lock = threading.Lock()

# A worker process takes a lane that has arrived only after this long for each lane it holds
# (at most LANE_PAUSE_MOST): every idle worker process wakes for it, and the one holding fewest
# takes it. Taken by whichever woke first, both lanes of one origin's grant went to one process
# as often as not, whose GIL then carried the origin alone while the other process idled.
LANE_PAUSE = 0.002
LANE_PAUSE_MOST = 0.01


def lane_pause() -> float:
    """How long this process leaves a new lane to the others (none while it holds none)."""
    worker = _worker if _worker_pid == os.getpid() else None
    return min(LANE_PAUSE_MOST, LANE_PAUSE * worker.lanes_held()) if worker is not None else 0.0


def get_worker() -> DeliveryWorker:
    """The process's DeliveryWorker, made on first use (after django-q2 forked the process)."""
    global _worker, _worker_pid
    with _worker_lock:
        if _worker is None or _worker_pid != os.getpid():
            _worker = DeliveryWorker(
                concurrency=conf.get("CONCURRENCY"),
                flush_seconds=conf.get("RECORD_FLUSH_SECONDS"),
                name=heartbeats.process_name(),
                follow_settings=True,
            )
            _worker_pid = os.getpid()
            # Runs when the process exits (django-q2 recycles workers and stops them with a
            # "STOP" pill): before the interpreter joins threads, finish and record what is in
            # flight. threading._register_atexit is what concurrent.futures itself uses for this.
            threading._register_atexit(_shutdown_process_worker)
        return _worker


def _shutdown_process_worker() -> None:
    _worker.shutdown()
    # The process is leaving: its live gauges stop counting. Not in shutdown() itself: a worker
    # stopped in a process that goes on (tests, an embedding) would leave the process's gauge file
    # removed while it still writes to it, unseen by /metrics.
    multiproc.process_exited()
