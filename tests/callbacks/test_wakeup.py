"""Wake-ups between processes: a listener is woken by notify() once the sender commits, on
PostgreSQL (NOTIFY) and through the named pipe SQLite uses."""

import threading

import pytest
from django.db import connection, transaction

from callbacks import wakeup

LONG = 600.0  # far longer than any test waits: a listener that returns was woken


@pytest.mark.django_db(transaction=True)  # NOTIFY is delivered at commit
def test_a_listener_is_woken_by_notify_once_the_sender_commits():
    listener = wakeup.listener("tests_wakeup", "a key")
    listener.drain()  # listening from here on
    try:
        with transaction.atomic():
            wakeup.notify("tests_wakeup", "a key")
            assert listener.wait(0) is False  # nothing visible before the commit

        assert listener.wait(LONG) is True
        listener.drain()
        assert listener.wait(0) is False  # drained: no second wake-up for the same notify
    finally:
        listener.close()


@pytest.mark.django_db(transaction=True)
def test_a_listener_ignores_other_keys():
    listener = wakeup.listener("tests_wakeup", "mine")
    listener.drain()
    try:
        wakeup.notify("tests_wakeup", "theirs")
        assert listener.wait(0.2) is False
    finally:
        listener.close()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="LISTEN needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_a_postgres_listener_that_lost_its_connection_listens_again():
    listener = wakeup.listener("tests_wakeup", "k")
    listener.drain()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [listener._conn.info.backend_pid])
    try:
        assert listener.wait(LONG) is True  # the drop ends the wait (look now), it does not raise
        listener.drain()  # listening again, on a new connection
        wakeup.notify("tests_wakeup", "k")
        assert listener.wait(LONG) is True
    finally:
        listener.close()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="LISTEN needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_tasks_due_now_name_their_origins_and_many_are_named_as_one():
    listener = wakeup.PostgresListener(wakeup.CHANNEL, "")
    listener.drain()
    try:
        few = ["http://a.test:80", "http://b.test:80"]
        wakeup.notify_due(few)
        assert wakeup.due_origins(listener.payloads(LONG)) == set(few)
        wakeup.notify_due(f"http://h{n}.test:80" for n in range(17))
        assert wakeup.due_origins(listener.payloads(LONG)) == {wakeup.ANY_ORIGIN}
        wakeup.notify_due([])  # nothing due now: the dispatcher is still woken, no lane is
        assert listener.payloads(LONG) == [""]
    finally:
        listener.close()


def test_a_pipe_listener_waiting_in_another_thread_is_woken(tmp_path):
    listener = wakeup.PipeListener(tmp_path / "w.fifo")
    listener.drain()
    woken = []
    waiter = threading.Thread(target=lambda: woken.append(listener.wait(LONG)), daemon=True)
    waiter.start()

    wakeup._write_pipe(tmp_path / "w.fifo")
    waiter.join(timeout=30)

    assert woken == [True]
    listener.drain()
    assert listener.wait(0) is False
    listener.close()


def test_waking_a_pipe_nobody_listens_on_neither_blocks_nor_fails(tmp_path):
    wakeup._write_pipe(tmp_path / "never.fifo")  # nobody ever listened: no pipe at all
    listener = wakeup.PipeListener(tmp_path / "gone.fifo")
    listener.drain()
    listener.close()
    wakeup._write_pipe(tmp_path / "gone.fifo")  # the pipe is there, its reader is gone

    again = wakeup.PipeListener(tmp_path / "gone.fifo")
    again.drain()
    assert again.wait(0) is False  # what nobody heard is not kept for the next listener
    again.close()


def test_many_wake_ups_unread_do_not_block_the_sender(tmp_path):
    listener = wakeup.PipeListener(tmp_path / "full.fifo")
    listener.drain()
    for _ in range(70_000):  # more than a pipe holds
        wakeup._write_pipe(tmp_path / "full.fifo")
    assert listener.wait(0) is True
    listener.close()
