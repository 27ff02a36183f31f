"""django-q2's ORM broker, woken at each enqueue instead of looking every few milliseconds.

django-q2's ORM broker, finding no batch, sleeps `poll` seconds and looks again, a query each time.
For a claimed callback to reach a worker within milliseconds that poll had to be 10 ms: 100 queries a
second from every idle cluster, most of what an idle service cost (python -m bench.idle). Here the
enqueue wakes the waiting pusher (callbacks.wakeup: NOTIFY at commit on PostgreSQL, a named pipe on
SQLite), and a dequeue that finds nothing waits for that wake-up; it looks anyway every `poll`
seconds (CALLBACKS_BROKER_POLL_SECONDS): a wake-up missed (a batch whose django-q2 lock ran out, one
enqueued some other way) delays a batch by that much, and loses none. A listening connection lost
and made again is followed by a look at once.

Selected by Q_CLUSTER["broker_class"] when REDIS_URL is unset. The Redis broker needs none of this:
its dequeue blocks in BLPOP.
"""

import os
import time

from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf

from callbacks import wakeup

CHANNEL = "callbacks_batches"
# A stopping cluster's pusher notices within this (django-q2's Redis broker blocks 1 s too).
STOP_CHECK_SECONDS = 1.0


class WokenORM(ORM):
    def __init__(self, list_key: str = None):
        super().__init__(list_key=list_key)
        self._forget_listener()

    def __setstate__(self, state):
        super().__setstate__(state)
        self._forget_listener()

    def _forget_listener(self):
        self._listener = None
        self._listener_pid = None
        self._woken = True  # the first dequeue looks at once
        self._looked_at = float("-inf")

    def enqueue(self, task):
        package_id = super().enqueue(task)
        wakeup.notify(CHANNEL, self.list_key, using=Conf.ORM)
        return package_id

    def dequeue(self):
        listener = self._listening()
        if self._woken or time.monotonic() - self._looked_at >= Conf.POLL:
            listener.drain()  # what woke us so far is served by this look
            self._woken = False
            self._looked_at = time.monotonic()
            taken = self._take()
            if taken:
                self._woken = True  # there may be more than one look takes (Conf.BULK)
                return taken
        # Back to django-q2's pusher at least every STOP_CHECK_SECONDS, without looking: it
        # checks whether its cluster is stopping, then calls again.
        wait = min(STOP_CHECK_SECONDS, Conf.POLL - (time.monotonic() - self._looked_at))
        self._woken = listener.wait(max(0.0, wait))
        return None

    def _take(self) -> list:
        """django-q2's ORM dequeue without its sleep: the batches due, each locked for us by a
        conditional update (another cluster may take the same one first)."""
        queued = self.get_connection().filter(key=self.list_key, lock__lt=timezone.now())[: Conf.BULK]
        return [
            (package.pk, package.payload)
            for package in queued
            if self.get_connection()
            .filter(id=package.id, lock=package.lock)
            .update(lock=self.timeout(package))
        ]

    def _listening(self):
        # The cluster's sentinel makes the broker and forks the pusher with it: listen in the
        # process that dequeues, never on a connection inherited through a fork.
        if self._listener is None or self._listener_pid != os.getpid():
            self._listener = wakeup.listener(CHANNEL, self.list_key, using=Conf.ORM)
            self._listener_pid = os.getpid()
            self._woken = True  # look at once: nothing has been heard in this process yet
        return self._listener
