"""Name resolution within the attempt's deadline.

getaddrinfo has no timeout of its own and cannot be interrupted: a slow resolver would hold the
worker's thread past the attempt's total deadline, which the watchdog (deadline.py) enforces on
sockets only. So a lookup runs on a thread of its own and the attempt waits for its answer no longer
than its deadline; a lookup given up on finishes (or fails) in the background, on a daemon thread, so
it holds no process at exit either. At most LOOKUP_THREADS lookups run at once per process: a resolver
that never answers ties up those, not the senders, and further lookups wait their turn within their
own deadlines.
"""

import socket
import threading
import time
from concurrent.futures import Future

from urllib3.exceptions import ConnectTimeoutError

from callbacks.delivery.http.deadline import current_watch
from callbacks.delivery.http.per_process import PerProcess

LOOKUP_THREADS = 16

_running = PerProcess(lambda: threading.BoundedSemaphore(LOOKUP_THREADS))


def lookup_within_deadline(connection, host: str, port: int, family: int, socktype: int) -> list[tuple]:
    """getaddrinfo(host, port, family, socktype), given up at the running attempt's deadline."""
    watch = current_watch()
    if watch is None:
        return socket.getaddrinfo(host, port, family, socktype)
    running = _running.get()
    answer: Future = Future()
    if running.acquire(timeout=_time_left(watch)):
        threading.Thread(
            target=_lookup,
            args=(answer, running, host, port, family, socktype),
            name="callbacks-lookup",
            daemon=True,
        ).start()
        try:
            return answer.result(timeout=_time_left(watch))
        except TimeoutError:
            pass
    # The deadline passed: send() reports the attempt as timed out on its total deadline.
    watch.expired = True
    raise ConnectTimeoutError(connection, f"resolving {host} did not finish within the deadline")


def _lookup(answer: Future, running: threading.BoundedSemaphore, *query) -> None:
    try:
        answer.set_result(socket.getaddrinfo(*query))
    except BaseException as exc:
        answer.set_exception(exc)
    finally:
        running.release()


def _time_left(watch) -> float:
    return max(0.0, watch.deadline - time.monotonic())
