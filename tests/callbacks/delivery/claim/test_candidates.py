"""The claim's candidate window (callbacks/delivery/claim/candidates.py): the hand-written PostgreSQL
statement that `limits.Round.read` runs and the ORM's definition (candidates.claimable_tasks, narrowed
by limits) must choose the same rows in the same order.

The hand-written SQL exists for PostgreSQL only; on any other database `Round.read` answers with the
ORM's definition itself, so a comparison there would check the ORM against itself. The comparisons
are therefore marked `claim_sql`, and tests/callbacks/delivery/claim/conftest.py deselects them (and
says so in the summary) unless the test database is PostgreSQL, as it is in CI (DATABASE_URL). The
database's own bound on priorities is checked on every backend.
"""

import random
from collections import Counter
from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from callbacks.delivery.claim import candidates as claim_candidates
from callbacks.delivery.claim import limits
from callbacks.models import CallbackTask, QueueState, TaskStatus
from tests.factories import make_task

pytestmark = pytest.mark.django_db
claim_sql = pytest.mark.claim_sql

ORIGINS = ["http://a.example:80", "http://b.example:80", "https://c.example:443"]


def candidates(now):
    return claim_candidates.in_claim_order(claim_candidates.claimable_tasks(now))


def orm_window(now, state: limits.Round, *, exclude, window):
    return claim_candidates.orm_window(state.narrow(candidates(now)), exclude=exclude, window=window)


@pytest.fixture
def mixed_tasks(tenant, other_api):
    """Tasks of two tenants over three origins: every priority, due and future, retrying, a paused
    queue, ordering keys with earlier unfinished and finished tasks, leased and final tasks."""
    rng = random.Random(7)
    now = timezone.now()
    tenants = [tenant, other_api.tenant]
    for number in range(240):
        origin = rng.choice(ORIGINS)
        due = now + timedelta(
            seconds=rng.choice([-300, -60, -5, -1, 30, 3600]), milliseconds=rng.randint(0, 999)
        )
        make_task(
            tenant=rng.choice(tenants),
            url=origin.replace(":80", "").replace(":443", "") + f"/hook/{number}",
            origin=origin,
            priority=rng.randint(0, 9),
            run_at=due,
            status=rng.choice(
                [TaskStatus.SCHEDULED] * 6 + [TaskStatus.RETRYING, TaskStatus.QUEUED, TaskStatus.SUCCEEDED]
            ),
            queue=rng.choice(["default", "default", "bulk", "paused"]),
            ordering_key=rng.choice(["", "", "", "k1", "k2"]),
        )
    # Breaker-held tasks share a next_attempt_at: due_at breaks the tie.
    CallbackTask.objects.filter(priority=3).update(
        next_attempt_at=now - timedelta(seconds=2), due_at=F("run_at")
    )
    QueueState.objects.create(name="paused", paused=True)
    return now, tenants


@pytest.mark.parametrize("window", [1, 7, 50, 500])
@claim_sql
def test_the_window_matches_the_orm_definition(mixed_tasks, window):
    now, _tenants = mixed_tasks
    state = limits.Round(now=now, targets=limits.TargetLimits(), at=now.timestamp())

    expected = orm_window(now, state, exclude=[], window=window)

    assert expected, "the fixture should leave claimable tasks"
    assert state.read(lambda: candidates(now), exclude=[], window=window) == expected


@claim_sql
def test_closed_origins_shares_and_excluded_ids_are_left_out_alike(mixed_tasks, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=1000)  # room for every row of an open origin
    now, tenants = mixed_tasks
    state = limits.Round(now=now, targets=limits.TargetLimits(), at=now.timestamp())
    state.load()
    state.closed_origins = {ORIGINS[0]}
    state.closed_shares = {(ORIGINS[1], tenants[0].id)}
    first = orm_window(now, state, exclude=[], window=5)
    exclude = [row.id for row in first]

    expected = orm_window(now, state, exclude=exclude, window=100)

    assert expected and not {row.origin for row in expected} & {ORIGINS[0]}
    assert not [row for row in expected if (row.origin, row.tenant_id) == (ORIGINS[1], tenants[0].id)]
    assert state.read(lambda: candidates(now), exclude=exclude, window=100) == expected


def test_priorities_above_the_range_are_refused_by_the_database(tenant):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        make_task(tenant=tenant, url="http://a.example/hook", priority=10)


def within_rooms(rows, room: int, window: int) -> list:
    """`rows` (in claim order) keeping no more than `room` of each origin at each priority level."""
    priority = dict(
        CallbackTask.objects.filter(id__in=[row.id for row in rows]).values_list("id", "priority")
    )
    kept = Counter()
    found = []
    for row in rows:
        level = (row.origin, priority[row.id])
        if kept[level] < room:
            kept[level] += 1
            found.append(row)
    return found[:window]


@claim_sql
@pytest.mark.parametrize("max_origins", [1, 200])
@pytest.mark.parametrize("closed", [[ORIGINS[0]], ORIGINS[:2], ORIGINS])
@pytest.mark.parametrize("limit", [2, 1000])
def test_with_closed_origins_both_ways_of_reading_agree(
    mixed_tasks, monkeypatch, callbacks_settings, max_origins, closed, limit
):
    """Closed origins: read per open origin (few origins), each origin's rows of a level no more than it
    has room for, or by level (many: here MAX_ORIGINS=1), every row."""
    monkeypatch.setattr(claim_candidates, "MAX_ORIGINS", max_origins)
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=limit)
    now, _tenants = mixed_tasks
    state = limits.Round(now=now, targets=limits.TargetLimits(), at=now.timestamp())
    state.load()
    state.closed_origins = set(closed)

    everything = orm_window(now, state, exclude=[], window=1000)
    expected = within_rooms(everything, limit, 60) if max_origins > 1 else everything[:60]

    assert bool(expected) == (len(closed) < len(ORIGINS))
    assert state.read(lambda: candidates(now), exclude=[], window=60) == expected
