"""Waking the dispatcher when new work is due now, so it need not wait for its next poll.

On PostgreSQL this is NOTIFY (delivered at commit, so the dispatcher never wakes before the
rows are visible); on SQLite the dispatcher polls, and this does nothing.
"""

from django.db import connection

CHANNEL = "callbacks_due"


def notify_dispatcher() -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])
