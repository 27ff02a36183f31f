"""The dispatcher's sleep when nothing is due: a listening leader sleeps long, NOTIFY ends the
sleep at once, it still beats on time, and stop ends it."""

import sys
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from callbacks.delivery.dispatcher import Dispatcher, Stop
from callbacks.delivery.instruments.heartbeats import DISPATCHER
from callbacks.models import Heartbeat
from callbacks.wakeup import notify_dispatcher
from tests.factories import make_task
from tests.processes import wait_until

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="NOTIFY wakes only on PostgreSQL")

URL = "http://127.0.0.1:9/hook"
LONG = 600.0  # far longer than any test waits: a sleep that ends was ended by something else


@pytest.fixture
def leader():
    dispatcher = Dispatcher(name="test-dispatcher")
    assert dispatcher.leadership.acquire()
    yield dispatcher
    dispatcher.leadership.release()


class Sleeper:
    """The leader's sleep in a thread, as its loop sleeps between steps."""

    def __init__(self, dispatcher, seconds):
        self.stop = Stop()
        self.thread = threading.Thread(target=self._run, args=(dispatcher, seconds), daemon=True)

    def _run(self, dispatcher, seconds):
        try:
            dispatcher._sleep(seconds, self.stop)
        finally:
            connection.close()  # this thread's own Django connection (heartbeats)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=30)


@pytest.mark.django_db
def test_a_listening_leader_with_nothing_due_sleeps_until_the_idle_bound(leader, callbacks_settings):
    callbacks_settings(DISPATCH_POLL_SECONDS=0.25, DISPATCH_IDLE_SECONDS=30.0)

    assert leader._sleep_seconds() == 30.0


@pytest.mark.django_db
def test_a_listening_leader_sleeps_until_the_next_task_is_due(leader, tenant, callbacks_settings):
    callbacks_settings(DISPATCH_POLL_SECONDS=0.25, DISPATCH_IDLE_SECONDS=30.0)
    make_task(tenant=tenant, url=URL, run_at=timezone.now() + timedelta(seconds=20))

    assert 15.0 < leader._sleep_seconds() <= 20.0


@pytest.mark.django_db
def test_a_dispatcher_nothing_wakes_polls(tenant, callbacks_settings):
    callbacks_settings(DISPATCH_POLL_SECONDS=0.25, DISPATCH_IDLE_SECONDS=30.0)

    assert Dispatcher(name="not leading")._sleep_seconds() == 0.25


@pytest.mark.django_db(transaction=True)  # NOTIFY is delivered at commit
def test_notify_ends_a_long_sleep(leader):
    with Sleeper(leader, LONG) as sleeper:
        notify_dispatcher()
        sleeper.thread.join(timeout=30)
        assert not sleeper.thread.is_alive()


@pytest.mark.django_db(transaction=True)
def test_stop_ends_a_long_sleep_at_once(leader, callbacks_settings):
    callbacks_settings(HEARTBEAT_SECONDS=600.0)  # no heartbeat ends the sleep either
    leader._last_beat = time.monotonic()
    with Sleeper(leader, LONG) as sleeper:
        wait_until(lambda: in_select(sleeper.thread), timeout=10, message="the leader asleep in select()")
        sleeper.stop.set()
        sleeper.thread.join(timeout=5)
        assert not sleeper.thread.is_alive()


def in_select(thread) -> bool:
    """Whether `thread` is waiting in select() right now, by its current frame."""
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code.co_name == "received":
            return True
        frame = frame.f_back
    return False


@pytest.mark.django_db(transaction=True)
def test_a_long_sleep_still_beats_on_time(leader, callbacks_settings):
    callbacks_settings(HEARTBEAT_SECONDS=0.1)
    leader._last_beat = float("-inf")

    def beats():
        return list(
            Heartbeat.objects.filter(role=DISPATCHER, name=leader.name).values_list("seen_at", flat=True)
        )

    with Sleeper(leader, LONG):
        wait_until(lambda: beats(), timeout=30, message="a first heartbeat")
        first = beats()[0]
        wait_until(lambda: beats()[0] > first, timeout=30, message="a second heartbeat, still asleep")


@pytest.mark.django_db(transaction=True)
def test_a_leader_whose_connection_the_server_closed_stands_down_at_once(leader):
    """The advisory lock went with the connection: sleeping on, it would believe it still led."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [leader.leadership._conn.info.backend_pid])

    assert leader.leadership.wait_for_wakeup(LONG, Stop()) is True
    assert leader.leadership._conn is None  # released: the next round must take the lock again
