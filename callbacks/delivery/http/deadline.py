"""The total deadline of an attempt, enforced by one watchdog thread per process.

requests has no total timeout: its read timeout is per recv, so a receiver that trickles a byte
now and then would hold a worker indefinitely. The watchdog shuts the socket down at the
deadline, whether the receiver is slow to read our body, to send its headers or to send its body.
"""

import heapq
import itertools
import socket
import threading
import time

import requests

from callbacks.delivery.http.per_process import PerProcess


class TotalTimeout(requests.exceptions.Timeout):
    """The attempt's total deadline (connect + send + headers + body) passed."""

    def __init__(self, seconds: float):
        super().__init__(f"timed out after {float(seconds)} s (total deadline)")
        self.seconds = seconds


class Watch:
    """One attempt's deadline and the socket it is using."""

    __slots__ = ("cut", "deadline", "done", "expired", "sock")

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.sock = None
        self.done = False
        self.expired = False  # the deadline passed
        self.cut = False  # ...and the watchdog shut the attempt's socket down


class Watchdog:
    """One thread per process that shuts down the sockets of attempts past their deadline.

    shutdown() makes a blocked send/recv in the attempt's thread return at once, so the
    attempt ends with a connection error that `send` reports as the deadline. A connection
    is detached from its attempt's watch (under the lock) before it goes back to the pool, so
    the watchdog never touches a socket another attempt has taken over.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Watch]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, watch: Watch) -> None:
        with self._cond:
            earliest = not self._heap or watch.deadline < self._heap[0][0]
            heapq.heappush(self._heap, (watch.deadline, next(self._seq), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="callbacks-deadline", daemon=True)
                self._thread.start()
            if earliest:
                self._cond.notify()

    def attach(self, watch: Watch, sock) -> None:
        with self._cond:
            if watch.done:
                return
            watch.sock = sock
            if watch.expired:
                watch.cut = True
                _shutdown(sock)

    def detach(self, watch: Watch) -> None:
        with self._cond:
            watch.sock = None

    def finish(self, watch: Watch) -> None:
        with self._cond:
            watch.done = True
            watch.sock = None

    def expire_all(self) -> int:
        """Bring every attempt's deadline forward to now (a worker stopping past its grace
        period); returns how many attempts were under way."""
        with self._cond:
            pending = [watch for _, _, watch in self._heap if not watch.done]
            for watch in pending:
                watch.deadline = time.monotonic()
            self._heap = [(watch.deadline, next(self._seq), watch) for watch in pending]
            heapq.heapify(self._heap)
            self._cond.notify()
            return len(pending)

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                _, _, watch = heapq.heappop(self._heap)
                watch.expired = True
                if watch.sock is not None:
                    watch.cut = True
                    _shutdown(watch.sock)


def _shutdown(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to interrupt


# The attempt running in this thread, so that connections can report their socket to it.
current = threading.local()


def current_watch() -> Watch | None:
    return getattr(current, "watch", None)


_watchdog = PerProcess(Watchdog)


def process_watchdog() -> Watchdog:
    """This process's watchdog (its thread starts with the first attempt)."""
    return _watchdog.get()
