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
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections, connection
from django.utils import timezone

from callbacks import conf
from callbacks.delivery import executor, http, outcomes, shutdown
from callbacks.delivery.claim import leases
from callbacks.delivery.instruments import heartbeats, metrics, multiproc

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

    def resize(self, limit: int) -> None:
        with self._changed:
            if limit != self.limit:
                self.limit = limit
                self._changed.notify_all()


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
        self._unrecorded = 0  # sent, not yet written
        self._stopping = threading.Event()
        self._closed = threading.Event()
        self._recorder = threading.Thread(target=self._record_loop, name="callback-recorder", daemon=True)
        self._recorder.start()

    # --- the django-q2 task's side ------------------------------------------------------
    def deliver_batch(self, token: str, task_ids: list) -> int:
        """Start every task of the batch as slots free up; return how many were started."""
        remaining = list(task_ids)
        started_count = 0
        while remaining:
            if not self._wait_for_a_slot():
                # Stopping: what was not started goes back to the queue at once.
                leases.release_claimed(token=token, task_ids=remaining, note="worker stopping; given back")
                break
            taken = 1
            while taken < len(remaining) and self._slots.acquire(blocking=False):
                taken += 1
            chunk, remaining = remaining[:taken], remaining[taken:]
            try:
                tasks = leases.start_claimed(token=token, task_ids=chunk)
            except BaseException:
                self._give_back_slots(taken)
                raise
            self._give_back_slots(taken - len(tasks))  # cancelled or reclaimed meanwhile
            for task in tasks:
                with self._state:
                    self._active[task.id] = (task, token)
                self._pool.submit(self._send, task, token)
            started_count += len(tasks)
        return started_count

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

    def _send(self, task, token: str) -> None:
        in_flight = metrics.CALLBACKS_IN_FLIGHT.labels(task.queue)
        in_flight.inc()
        if task.due_at is not None:
            metrics.DISPATCH_LAG_SECONDS.observe(max(0.0, (timezone.now() - task.due_at).total_seconds()))
        try:
            result = executor.send_attempt(task, attempt=task.attempts)
            with self._state:
                if self._active.pop(task.id, None) is None:
                    return  # already recorded as interrupted at shutdown: this late result is moot
                self._unrecorded += 1
            self._finished.put(outcomes.Finished(task=task, token=token, result=result, worker=self.name))
        finally:
            in_flight.dec()
            self._slots.release()
            with self._state:
                self._active.pop(task.id, None)  # also when sending raised (it should not)
                self._state.notify_all()

    # --- recording ----------------------------------------------------------------------
    def _record_loop(self) -> None:
        pending: list[outcomes.Finished] = []
        last_flush = time.monotonic()
        last_beat = 0.0
        failures = 0
        while not (self._closed.is_set() and not pending):
            if time.monotonic() - last_beat >= conf.get("HEARTBEAT_SECONDS"):
                last_beat = time.monotonic()
                self._beat()
            if self._follow_settings:
                self._follow_runtime_settings()
            self._take_finished(pending, timeout=self._record_wait(pending, last_beat))
            if not pending:
                continue
            if len(pending) < _FLUSH_AT and time.monotonic() - last_flush < self._flush_seconds:
                continue
            try:
                outcomes.record(pending)
            except Exception:
                # The database is away (restart, network): keep the results and try again.
                # Nothing is lost; if this process dies meanwhile, the leases bring the tasks back.
                failures += 1
                logger.exception("recording %d attempts failed (try %d); will retry", len(pending), failures)
                close_old_connections()
                time.sleep(min(5.0, 0.1 * 2**failures))
                continue
            failures = 0
            recorded = len(pending)
            pending = []
            last_flush = time.monotonic()
            with self._state:
                self._unrecorded -= recorded
                self._state.notify_all()
        connection.close()  # this thread's own connection; nothing else will close it

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
                        result=executor.interrupted_result(
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

    def _beat(self) -> None:
        """Tell /readyz this process is alive, with its connection pool's state."""
        try:
            heartbeats.beat(role=heartbeats.WORKER, name=self.name, info={"in_flight": len(self._active)})
        except Exception:
            logger.warning("worker heartbeat failed", exc_info=True)
            close_old_connections()

    # --- lifecycle ----------------------------------------------------------------------
    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is in flight and everything sent is recorded."""
        deadline = time.monotonic() + timeout
        with self._state:
            while self._active or self._unrecorded:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._state.wait(remaining)
        return True

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
        self._closed.set()
        self._finished.put(_WAKE)
        self._recorder.join(timeout=5)
        multiproc.process_exited()


_worker: DeliveryWorker | None = None
_worker_pid: int | None = None
_worker_lock = threading.Lock()


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
            threading._register_atexit(_worker.shutdown)
        return _worker
