"""Keeping a django-q2 cluster alive when one of its worker processes is killed.

django-q2's idle workers wait in `multiprocessing.Queue.get()`, which holds the queue's read
lock while it blocks. A worker killed there (kill -9, the OOM killer) never releases it: every
other worker then waits on that lock forever, the cluster stops taking work and cannot stop.
Our workers wait for data on the queue's pipe without the lock (a select on its file
descriptor, which anyone may do) and only then take the lock for a non-blocking get, so the
lock is held for microseconds, never across a wait. Idle workers all wake when a batch
arrives; one gets it, the others go back to waiting.

Which one gets it may be weighed: a worker whose `pause()` says so waits that long before it
tries, so that a worker with less to do (a pause of none) takes the batch first.
"""

import queue
import time

# An idle worker looks again at least this often (a wake-up without data costs nothing).
WAIT_SECONDS = 1.0


class NonBlockingReader:
    """Stands in for the cluster's task queue inside one worker: `get` never blocks holding the lock."""

    def __init__(self, task_queue, pause=None):
        self._queue = task_queue
        self._pause = pause

    def get(self):
        while True:
            # multiprocessing.Queue's own get(block=False) polls this same pipe, under the lock.
            if self._queue._reader.poll(WAIT_SECONDS):
                pause = self._pause() if self._pause else 0.0
                if pause > 0:
                    time.sleep(pause)
                try:
                    return self._queue.get_nowait()
                except queue.Empty:
                    pass  # another worker took it


def install(pause=None) -> None:
    """Make django-q2's Sentinel start its workers on a NonBlockingReader (in the main process,
    before the cluster starts: the Sentinel and its workers are forked from it), each waiting
    `pause()` seconds, asked in the worker, before it takes a batch that has arrived."""
    import django_q.cluster
    import django_q.worker

    original = django_q.worker.worker

    def worker(task_queue, *args, **kwargs):
        return original(NonBlockingReader(task_queue, pause), *args, **kwargs)

    django_q.cluster.worker = worker
