"""Name resolution within the attempt's deadline.

getaddrinfo has no timeout of its own and cannot be interrupted: a slow resolver would hold the
worker's thread past the attempt's total deadline, which the watchdog (deadline.py) enforces on
sockets only. So lookups run on a few threads of their own and the attempt waits for its answer no
longer than its deadline; a lookup given up on finishes (or fails) there in the background. There
are at most LOOKUP_THREADS per process, so a resolver that never answers ties up those threads, not
the senders: further lookups wait their turn, within their own deadlines.
"""

import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from urllib3.exceptions import ConnectTimeoutError

from callbacks.delivery.http.deadline import current_watch

LOOKUP_THREADS = 16

_lookups: ThreadPoolExecutor | None = None
_lookups_lock = threading.Lock()


def lookup_within_deadline(connection, host: str, port: int, family: int, socktype: int) -> list[tuple]:
    """getaddrinfo(host, port, family, socktype), given up at the running attempt's deadline."""
    watch = current_watch()
    if watch is None:
        return socket.getaddrinfo(host, port, family, socktype)
    pending = _pool().submit(socket.getaddrinfo, host, port, family, socktype)
    try:
        return pending.result(timeout=max(0.0, watch.deadline - time.monotonic()))
    except FutureTimeout:
        pending.cancel()  # if it has not started yet
        # The deadline passed: send() reports the attempt as timed out on its total deadline.
        watch.expired = True
        raise ConnectTimeoutError(
            connection, f"resolving {host} did not finish within the deadline"
        ) from None


def _pool() -> ThreadPoolExecutor:
    global _lookups
    pool = _lookups
    if pool is None:
        with _lookups_lock:
            if _lookups is None:
                _lookups = ThreadPoolExecutor(
                    max_workers=LOOKUP_THREADS, thread_name_prefix="callbacks-lookup"
                )
            pool = _lookups
    return pool


def _forget_after_fork() -> None:
    # The pool's threads did not survive the fork.
    global _lookups, _lookups_lock
    _lookups = None
    _lookups_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
