"""Waking a process that waits for work, so that it need not poll.

Two wake-ups go through here: the dispatcher's, when new work is due now (`notify_dispatcher`; the
leading dispatcher LISTENs on its leader connection), and a django-q2 pusher's, when a batch is
enqueued for its queue (`notify` and `Listener`, used by callbacks.delivery.broker).

On PostgreSQL a wake-up is NOTIFY, delivered at commit, so the listener never wakes before the rows
are visible. On SQLite it is a byte written at commit into a named pipe under VAR_DIR, one per
channel and key, which the listener selects on; the dispatcher does not listen there and polls.
A wake-up is a hint, never the only way work is found: a listener still looks on its own every now
and then, so a wake-up lost (a connection remade, no listener yet) delays work and loses none.
"""

import errno
import logging
import os
import re
import select
import time
from functools import partial
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connection, connections, transaction
from psycopg import sql

logger = logging.getLogger(__name__)

CHANNEL = "callbacks_due"
# On CHANNEL, "due:<origin>" says tasks to that origin were created due now ("due:*": to many), so
# that a worker's lane of that origin with nothing to send takes them (callbacks.delivery.worker);
# every other payload, and these too, only wake the dispatcher.
DUE_PREFIX = "due:"
ANY_ORIGIN = "*"
# More origins than this in one transaction are announced as one "due:*".
_ORIGINS_NAMED = 16


def notify_dispatcher() -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])


def notify_due(origins) -> None:
    """Tasks to these origins are due now: wake the dispatcher and any lane of theirs waiting for work."""
    if connection.vendor != "postgresql":
        return
    origins = set(origins)
    if not origins:
        return notify_dispatcher()
    if len(origins) > _ORIGINS_NAMED:
        origins = {ANY_ORIGIN}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_notify(%s, %s || origin) FROM unnest(%s::text[]) AS origin",
            [CHANNEL, DUE_PREFIX, sorted(origins)],
        )


def due_origins(payloads) -> set[str]:
    """The origins named by "due:" wake-ups among these payloads (ANY_ORIGIN for every one)."""
    return {payload[len(DUE_PREFIX) :] for payload in payloads if payload.startswith(DUE_PREFIX)}


def notify(channel: str, key: str, *, using: str = "default") -> None:
    """Wake the listeners of (channel, key) once the current transaction commits (now, outside one)."""
    target = connections[using]
    if target.vendor == "postgresql":
        with target.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [channel, key])
    else:
        transaction.on_commit(partial(_write_pipe, pipe_path(channel, key)), using=using)


def listener(channel: str, key: str, *, using: str = "default") -> "PostgresListener | PipeListener":
    """A listener of (channel, key) for this process; make it in the process that waits."""
    if connections[using].vendor == "postgresql":
        return PostgresListener(channel, key, using=using)
    return PipeListener(pipe_path(channel, key))


def connection_params(using: str = "default") -> dict:
    """psycopg's connection arguments for a connection of our own to Django's database `using`."""
    params = connections[using].get_connection_params()
    keep = ("dbname", "user", "password", "host", "port", "sslmode", "options", "sslrootcert")
    return {key: value for key, value in params.items() if key in keep and value not in (None, "")}


class PostgresListener:
    """LISTEN on a connection of its own (a Django connection is shared and may sit in a transaction)."""

    def __init__(self, channel: str, key: str, *, using: str = "default"):
        self.channel, self.key, self.using = channel, key, using
        self._conn: psycopg.Connection | None = None

    def _listening(self) -> psycopg.Connection | None:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self.close()  # lost (the server went away): psycopg may not have closed it yet
        try:
            conn = psycopg.connect(**connection_params(self.using), autocommit=True)
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        except psycopg.Error as exc:
            logger.warning("cannot listen for wake-ups on %s (polling meanwhile): %s", self.channel, exc)
            return None
        self._conn = conn
        return conn

    def drain(self) -> None:
        """Forget wake-ups received so far (the look that follows serves them); start listening
        if not yet, so that anything committed after that look wakes `wait`."""
        conn = self._listening()
        if conn is None:
            return
        try:
            for _ in conn.notifies(timeout=0):
                pass
        except psycopg.Error:
            self.close()

    def wait(self, timeout: float) -> bool:
        """Sleep until a wake-up arrives or `timeout`; True when woken for our key, or when the
        connection was lost (what was sent meanwhile is missed: look now). Waiting on the socket
        rather than in psycopg's 0.1 s slices (see `received`) was half an idle pusher's CPU."""
        payloads = self.payloads(timeout)
        return payloads is None or self.key in payloads

    def payloads(self, timeout: float, *, interrupt: int | None = None) -> list[str] | None:
        """The payloads of the wake-ups that arrive within `timeout` (whatever their key), or none
        once the file descriptor `interrupt` is readable; None when the connection was lost, so that
        what was sent meanwhile is looked for at once."""
        conn = self._listening()
        if conn is None:
            time.sleep(timeout)
            return []
        try:
            return received(conn, timeout, interrupt=interrupt)
        except (psycopg.Error, OSError):
            self.close()  # made again at the next look
            return None

    def close(self) -> None:
        close_quietly(self._conn)
        self._conn = None


def received(conn: psycopg.Connection, timeout: float, *, interrupt: int | None = None) -> list[str]:
    """The payloads of the notifications that arrive on a listening connection within `timeout`
    (none: nothing came). Raises psycopg.Error or OSError when the connection is gone.

    A select() on the socket rather than psycopg's notifies(timeout), which wakes every 0.1 s to
    check for signals. A socket readable with nothing to read is the server closing the
    connection (psycopg sees that only when it is used) or a stray wake: a statement tells which."""
    watched = [conn.fileno()] if interrupt is None else [conn.fileno(), interrupt]
    readable, _, _ = select.select(watched, [], [], timeout)
    if conn.fileno() not in readable:
        return []
    payloads = [notification.payload for notification in conn.notifies(timeout=0)]
    if not payloads:
        conn.execute("SELECT 1")
    return payloads


def close_quietly(conn: psycopg.Connection | None) -> None:
    """Close a connection of our own that may already be dead."""
    if conn is not None:
        try:
            conn.close()
        except psycopg.Error:
            pass


def pipe_path(channel: str, key: str) -> Path:
    safe_key = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
    return Path(settings.VAR_DIR) / f"wakeup-{channel}-{safe_key}.fifo"


class PipeListener:
    """A named pipe opened for reading and writing: it then always has a writer, so select() waits
    for a byte instead of reporting end-of-file while no writer has it open."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def _opened(self) -> int:
        if self._fd is None:
            try:
                os.mkfifo(self.path)
            except FileExistsError:
                pass
            self._fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        return self._fd

    def drain(self) -> None:
        fd = self._opened()
        try:
            while os.read(fd, 4096):
                pass
        except BlockingIOError:
            pass

    def wait(self, timeout: float) -> bool:
        readable, _, _ = select.select([self._opened()], [], [], timeout)
        return bool(readable)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _write_pipe(path: Path) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        # ENOENT: nobody has listened yet; ENXIO: nobody listens now. Their first look finds the work.
        if exc.errno not in (errno.ENOENT, errno.ENXIO):
            logger.warning("cannot wake the listener of %s: %s", path, exc)
        return
    try:
        os.write(fd, b"\0")
    except BlockingIOError:
        pass  # the pipe is full of wake-ups not yet read: one more adds nothing
    finally:
        os.close(fd)
