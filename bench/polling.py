"""Waiting for a burst to finish without weighing on it: the service and the Celery peer are both
waited for with this, by counting their rows.

Counting every 0.2 s cost PostgreSQL ~30 ms a count with 100,000 rows, a tenth of a core taken from
the run it measures. The count is asked for again when, at the rate seen so far, about a quarter
of what is left should be done (between 0.2 and 2 s). The figures are read from the rows' own times
afterwards, so how often the count is asked changes nothing of them."""

import time
from collections.abc import Callable

SHORTEST, LONGEST = 0.2, 2.0


def wait_for_count(count_now: Callable[[], int], target: int, timeout: float) -> bool:
    """Whether `count_now()` reached `target` within `timeout` seconds."""
    started = time.monotonic()
    first = done = count_now()
    while done < target:
        elapsed = time.monotonic() - started
        if elapsed >= timeout:
            return False
        rate = (done - first) / elapsed if elapsed > 0 else 0.0
        pause = (target - done) / rate / 4 if rate > 0 else SHORTEST
        time.sleep(min(LONGEST, max(SHORTEST, pause), timeout - elapsed))
        done = count_now()
    return True
