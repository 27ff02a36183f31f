"""django-q2's ORM broker, woken at each enqueue instead of looking every few milliseconds.

django-q2's ORM broker, finding no batch, sleeps `poll` seconds and looks again, a query each time.
For a claimed callback to reach a worker within milliseconds that poll had to be 10 ms: 100 queries a
second from every idle cluster, most of what an idle service cost (python -m bench.idle). Here the
enqueue wakes the waiting pusher (callbacks.wakeup: NOTIFY at commit on PostgreSQL, a named pipe on
SQLite), and a dequeue that finds nothing waits for that wake-up, at most `poll` seconds
(CALLBACKS_BROKER_POLL_SECONDS), before it looks anyway: a wake-up missed (the listening connection
lost and made again, a batch whose django-q2 lock ran out) delays a batch by that much, and loses none.

Selected by Q_CLUSTER["broker_class"] when REDIS_URL is unset. The Redis broker needs none of this:
its dequeue blocks in BLPOP.
"""

import os

from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf

from callbacks import wakeup

CHANNEL = "callbacks_batches"


class WokenORM(ORM):
    def __init__(self, list_key: str = None):
        super().__init__(list_key=list_key)
        self._listener = None
        self._listener_pid = None

    def __setstate__(self, state):
        super().__setstate__(state)
        self._listener = None
        self._listener_pid = None

    def enqueue(self, task):
        package_id = super().enqueue(task)
        wakeup.notify(CHANNEL, self.list_key, using=Conf.ORM)
        return package_id

    def dequeue(self):
        listener = self._listening()
        listener.drain()  # what woke us so far is served by the look below
        taken = self._take()
        if taken:
            return taken
        listener.wait(Conf.POLL)
        return None  # django-q2's pusher calls again at once (after checking whether to stop)

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
        return self._listener
