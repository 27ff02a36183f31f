"""PostgreSQL's picture of the due set kept true while a backlog lasts.

A service that keeps up is analyzed with almost nothing due, so the statistics (and the sizes of
the partial indexes of the due set) describe a backlog that arrives afterwards as a handful of rows,
and statements the planner may plan either way read all of it (candidates.py). Autovacuum analyzes
the task table after 5,000 changed rows (migration 0012), but only at its next round, a minute by
default, and never when it is off. The leader sees a backlog first: after a claim that left due
work, it counts the due tasks (up to COUNTED) and compares them with what the statistics say
task_claimable_idx holds; when they are far apart it has the table analyzed, in a thread of its own
so that the claims go on meanwhile (an ANALYZE samples at most 30,000 rows, but on a large table
not in memory that may take seconds).
"""

import logging
import math
import threading
import time
from datetime import datetime

from django.db import DatabaseError, connection

from callbacks.delivery.claim.candidates import CLAIMABLE_SQL
from callbacks.models import CallbackTask

logger = logging.getLogger(__name__)

CHECK_SECONDS = 10.0  # how often the leader compares, while due work is left
ANALYZE_SECONDS = 60.0  # and how often at most it has the table analyzed
COUNTED = 5000  # the due tasks counted at most (an index range of task_claimable_idx)
# Behind: at least a fifth of COUNTED due, and more than BEHIND times what the statistics say.
BEHIND = 10

_TASKS = CallbackTask._meta.db_table
_DUE_AND_BELIEVED_SQL = f"""
SELECT (SELECT count(*) FROM (
            SELECT 1 FROM {_TASKS}
            WHERE status IN ({CLAIMABLE_SQL}) AND next_attempt_at <= %s
            LIMIT %s) due),
       (SELECT GREATEST(reltuples, 0) FROM pg_class WHERE oid = 'task_claimable_idx'::regclass)
"""


class DueSetStatistics:
    """The leader's side: when it last compared and last had the table analyzed."""

    def __init__(self):
        self._checked_at = self._analyzed_at = -math.inf
        self._analyzing: threading.Thread | None = None

    def after_claim(self, *, work_left: bool, now: datetime) -> threading.Thread | None:
        """After a claim: the thread analyzing the table when this started one, else None."""
        if not work_left or connection.vendor != "postgresql":
            return None
        at = time.monotonic()
        if at - self._checked_at < CHECK_SECONDS or at - self._analyzed_at < ANALYZE_SECONDS:
            return None
        if self._analyzing is not None and self._analyzing.is_alive():
            return None
        self._checked_at = at
        with connection.cursor() as cursor:
            cursor.execute(_DUE_AND_BELIEVED_SQL, [now, COUNTED])
            due, believed = cursor.fetchone()
        if due < COUNTED // 5 or due <= BEHIND * (believed or 0):
            return None
        logger.info(
            "%s due tasks or more where the statistics say %d: analyzing %s", due, believed or 0, _TASKS
        )
        self._analyzed_at = at
        self._analyzing = threading.Thread(target=_analyze, name="due-set-analyze", daemon=True)
        self._analyzing.start()
        return self._analyzing


def _analyze() -> None:
    """On a connection of this thread's own. SKIP_LOCKED: an ANALYZE or VACUUM already under way
    (autovacuum's) would otherwise be waited for; without the table's ownership PostgreSQL only
    warns and skips it."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE (SKIP_LOCKED) {_TASKS}")
    except DatabaseError:
        logger.warning("analyzing %s failed; autovacuum's next round will", _TASKS, exc_info=True)
    finally:
        connection.close()
