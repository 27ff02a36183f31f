"""The ORM broker woken at enqueue: a waiting dequeue gets a batch without polling for it, and a
batch whose wake-up was lost is still found by the fallback look."""

import threading

import pytest
from django.db import connection, transaction
from django_q.brokers.orm import ORM
from django_q.conf import Conf

from callbacks.delivery.broker import WokenORM

# Much longer than the tests wait for a batch: only a wake-up can bring it in time.
LONG_POLL = 600.0


class Pusher:
    """django-q2's pusher loop in a thread: dequeue until a batch comes. `looked` is set once its
    first look found nothing, so what is enqueued after that can only arrive by a wake-up or the
    fallback look."""

    def __init__(self, broker, want: int = 1):
        self.broker = broker
        self.want = want
        self.looked = threading.Event()
        self.batches = []
        self._take = broker._take
        broker._take = self._observed_take
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _observed_take(self):
        taken = self._take()
        if not taken:
            self.looked.set()
        return taken

    def _run(self):
        try:
            while len(self.batches) < self.want:
                taken = self.broker.dequeue()
                if taken:
                    self.batches.extend(taken)
        finally:
            connection.close()  # this thread's own Django connection

    def __enter__(self):
        self.thread.start()
        assert self.looked.wait(30), "the pusher never looked"
        return self

    def __exit__(self, *exc):
        self.thread.join(timeout=30)


@pytest.fixture
def poll(monkeypatch):
    def set_poll(seconds):
        monkeypatch.setattr(Conf, "POLL", seconds)

    return set_poll


@pytest.mark.django_db(transaction=True)  # the pusher's thread sees only committed batches
def test_an_enqueued_batch_wakes_a_waiting_dequeue(poll):
    poll(LONG_POLL)
    broker = WokenORM(list_key="woken")

    with Pusher(broker) as pusher:
        package_id = broker.enqueue("the batch")
        pusher.thread.join(timeout=30)

    assert pusher.batches == [(package_id, "the batch")]


@pytest.mark.django_db(transaction=True)
def test_batches_enqueued_together_are_all_taken(poll):
    poll(LONG_POLL)
    broker = WokenORM(list_key="several")

    with Pusher(broker, want=3) as pusher:
        with transaction.atomic():  # one commit, one wake-up; django-q2 takes one batch per look
            ids = [broker.enqueue(f"batch {n}") for n in range(3)]
        pusher.thread.join(timeout=30)

    assert sorted(pusher.batches) == sorted(zip(ids, ["batch 0", "batch 1", "batch 2"], strict=True))


@pytest.mark.django_db(transaction=True)
def test_a_waiting_dequeue_hands_back_to_the_pusher_without_a_batch(poll):
    # django-q2's pusher checks between calls whether its cluster is stopping.
    poll(LONG_POLL)
    broker = WokenORM(list_key="quiet")
    results = []

    def pusher_turns():
        results.extend([broker.dequeue(), broker.dequeue()])
        connection.close()

    caller = threading.Thread(target=pusher_turns, daemon=True)
    caller.start()
    caller.join(timeout=30)

    assert results == [None, None]


@pytest.mark.django_db(transaction=True)
def test_a_wake_up_for_another_queue_does_not_take_its_batch(poll):
    poll(LONG_POLL)
    broker = WokenORM(list_key="mine")

    with Pusher(broker) as pusher:
        WokenORM(list_key="theirs").enqueue("their batch")
        package_id = broker.enqueue("my batch")
        pusher.thread.join(timeout=30)

    assert pusher.batches == [(package_id, "my batch")]
    assert WokenORM(list_key="theirs").queue_size() == 1


@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_wake_up_was_lost_is_found_by_the_fallback_look(poll):
    poll(0.05)
    broker = WokenORM(list_key="unwoken")

    with Pusher(broker) as pusher:
        # django-q2's own enqueue: the row, and no wake-up at all.
        package_id = ORM.enqueue(broker, "a silent batch")
        pusher.thread.join(timeout=30)

    assert pusher.batches == [(package_id, "a silent batch")]


@pytest.mark.django_db(transaction=True)
def test_a_dequeue_survives_its_listening_connection_dropping(poll):
    poll(LONG_POLL)
    broker = WokenORM(list_key="dropped")

    with Pusher(broker) as pusher:
        listener = broker._listener
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # as a database restart would
                cursor.execute("SELECT pg_terminate_backend(%s)", [listener._conn.info.backend_pid])
        package_id = broker.enqueue("after the drop")
        pusher.thread.join(timeout=30)

    assert pusher.batches == [(package_id, "after the drop")]
