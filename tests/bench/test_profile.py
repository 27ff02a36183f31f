"""The profiler's count of how a burst's tasks were started (bench/profile.py)."""

import pytest
from django.utils import timezone

from bench.profile import how_tasks_started
from callbacks.delivery.claim import lanes, leases
from tests.factories import make_tasks

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/profiled"


def test_the_tasks_started_are_counted_with_the_statements_that_started_them(tenant, settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "MAX_CONCURRENCY_PER_ORIGIN": 3}
    make_tasks(10, tenant=tenant, url=URL)
    make_tasks(2, tenant=tenant, url="http://127.0.0.1:8/elsewhere")  # another burst's
    # The leader: three tasks of the burst in one claim (beside the other burst's two).
    (claim,) = [claim for claim in leases.claim_due(limit=10) if claim.origin == "http://127.0.0.1:9"]

    lanes.refill(token=claim.token, want=3, in_flight=0, taking=True, now=timezone.now())
    lanes.refill(token=claim.token, want=2, in_flight=1, taking=True, now=timezone.now())

    assert how_tasks_started([URL]) == (5, 2, 3, 1)
