"""The leader has the task table analyzed when a backlog arrives that its statistics do not know
(callbacks/delivery/claim/statistics.py)."""

import pytest
from django.db import connection
from django.utils import timezone

from callbacks.delivery.claim import statistics
from tests.factories import analyze_task_table, backlog_unknown_to_the_planner

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="ANALYZE and pg_class are PostgreSQL's"
)

BACKLOG = statistics.COUNTED // 5 + 500


def believed_due() -> float:
    """What the statistics say task_claimable_idx holds."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'task_claimable_idx'::regclass")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)  # the ANALYZE runs on a connection of its own
def test_a_backlog_the_statistics_do_not_know_has_the_table_analyzed_once(tenant, django_assert_num_queries):
    backlog_unknown_to_the_planner(tenant=tenant, count=BACKLOG)
    assert believed_due() < BACKLOG / statistics.BEHIND
    due = statistics.DueSetStatistics()

    analyzing = due.after_claim(work_left=True, now=timezone.now())

    assert analyzing is not None
    analyzing.join(timeout=60)
    assert not analyzing.is_alive()
    assert believed_due() >= BACKLOG * 0.9  # the index's size as sampled by ANALYZE
    with django_assert_num_queries(0):  # not looked at again so soon
        assert due.after_claim(work_left=True, now=timezone.now()) is None


@pytest.mark.django_db
def test_statistics_that_know_the_backlog_are_left_alone(tenant):
    backlog_unknown_to_the_planner(tenant=tenant, count=BACKLOG)
    analyze_task_table()

    assert statistics.DueSetStatistics().after_claim(work_left=True, now=timezone.now()) is None


@pytest.mark.django_db
def test_a_few_due_tasks_are_no_reason_to_analyze(tenant):
    backlog_unknown_to_the_planner(tenant=tenant, count=statistics.COUNTED // 5 - 1)

    assert statistics.DueSetStatistics().after_claim(work_left=True, now=timezone.now()) is None


@pytest.mark.django_db
def test_a_claim_that_left_nothing_due_looks_at_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert statistics.DueSetStatistics().after_claim(work_left=False, now=timezone.now()) is None
