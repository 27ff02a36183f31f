"""How PostgreSQL reads the due set when its statistics remember it empty (callbacks/delivery/claim/candidates.py).

A service that keeps up has almost no claimable task whenever the table is analyzed; a backlog that
arrives afterwards looks like a handful of rows to the planner until the next ANALYZE. Statements it
may plan either way must then not read every due task: each test makes such statistics (a quiet
table analyzed, then a backlog) and explains the statements as the code ran them.
"""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from callbacks.delivery.claim import candidates
from callbacks.models import CallbackTask, TaskStatus
from tests import factories
from tests.factories import make_task

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the planner and its statistics are PostgreSQL's"
    ),
]

BACKLOG = 2000


@pytest.fixture
def backlog_unknown_to_the_planner(tenant):
    return factories.backlog_unknown_to_the_planner(tenant=tenant, count=BACKLOG)


def plan_as_run(queries, statement) -> str:
    """EXPLAIN of `statement` (one of the captured `queries`), after the statements that ran before it
    in its transaction, as they ran."""
    index = next(number for number, query in enumerate(queries) if query["sql"] == statement)
    earlier = [query["sql"] for query in queries[:index] if query["sql"] not in ("BEGIN", "COMMIT")]
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in earlier:
            cursor.execute(sql)
        cursor.execute("EXPLAIN " + statement)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_next_due_time_is_read_as_a_walk_of_the_due_index(backlog_unknown_to_the_planner):
    earliest = backlog_unknown_to_the_planner[0]

    with CaptureQueriesContext(connection) as captured:
        found = candidates.next_claimable_at(timezone.now() + timedelta(seconds=60))

    assert found == earliest.next_attempt_at
    read = next(query["sql"] for query in captured.captured_queries if "ORDER BY" in query["sql"])
    plan = plan_as_run(captured.captured_queries, read)
    assert "Index Scan using task_claimable_idx" in plan, plan
    assert "Sort" not in plan and "Bitmap" not in plan, plan


def test_the_settings_of_the_walk_do_not_outlast_it_inside_another_transaction(
    backlog_unknown_to_the_planner,
):
    with transaction.atomic(), connection.cursor() as cursor:
        candidates.next_claimable_at(timezone.now())
        cursor.execute("SELECT current_setting('enable_bitmapscan'), current_setting('enable_sort')")
        assert cursor.fetchone() == ("on", "on")


def test_the_claim_locks_its_tasks_by_primary_key(backlog_unknown_to_the_planner):
    ids = [task.id for task in backlog_unknown_to_the_planner[1000:1020]]

    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        locked = candidates.still_claimable(ids, now=timezone.now())

    assert locked == set(ids)
    lock = next(query["sql"] for query in captured.captured_queries if "FOR UPDATE" in query["sql"])
    plan = plan_as_run(captured.captured_queries, lock)
    assert "callbacks_callbacktask_pkey" in plan, plan
    assert "task_claimable_idx" not in plan, plan


def test_only_tasks_still_due_and_claimable_are_locked(tenant):
    now = timezone.now()
    due = make_task(tenant=tenant, url="http://a.example/due", run_at=now - timedelta(seconds=1))
    retrying = make_task(
        tenant=tenant,
        url="http://a.example/retry",
        run_at=now - timedelta(seconds=1),
        status=TaskStatus.RETRYING,
    )
    later = make_task(tenant=tenant, url="http://a.example/later", run_at=now + timedelta(seconds=60))
    running = make_task(tenant=tenant, url="http://a.example/running", status=TaskStatus.RUNNING)
    done = make_task(
        tenant=tenant, url="http://a.example/done", status=TaskStatus.SUCCEEDED, next_attempt_at=None
    )

    with transaction.atomic():
        locked = candidates.still_claimable(
            [task.id for task in (due, retrying, later, running, done)], now=now
        )

    assert locked == {due.id, retrying.id}


def test_the_task_table_is_analyzed_after_a_fixed_number_of_changes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [CallbackTask._meta.db_table])
        options = set(cursor.fetchone()[0] or [])

    assert {"autovacuum_analyze_scale_factor=0", "autovacuum_analyze_threshold=5000"} <= options
