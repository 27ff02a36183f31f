"""Tasks started for a URL marked gone (410) come with `url_gone` set, read in the statement that starts
them (claim/gone.py): on PostgreSQL in the hand-written statements, elsewhere through the ORM and
`gone.flag`."""

import pytest
from django.utils import timezone

from callbacks.delivery.claim import gone, lanes, leases
from callbacks.models import GoneUrl
from callbacks.services.gone import url_digest
from tests.callbacks.delivery.attempts import A, B, claim
from tests.factories import make_task, past

pytestmark = pytest.mark.django_db


def mark(tenant, url):
    GoneUrl.objects.create(tenant=tenant, url=url, url_digest=url_digest(url))


def test_tasks_started_from_a_claim_say_whether_their_url_is_gone(tenant, other_api):
    mark(tenant, A)
    mine_gone = make_task(tenant=tenant, url=A, run_at=past(1))
    mine_fine = make_task(tenant=tenant, url=B, run_at=past(1))
    theirs = make_task(tenant=other_api.tenant, url=A, run_at=past(1))  # gone for `tenant` only

    started = {}
    by_token: dict = {}
    for task_id, token in claim():
        by_token.setdefault(token, []).append(task_id)
    for token, ids in by_token.items():
        started.update({task.id: task.url_gone for task in leases.start_claimed(token=token, task_ids=ids)})

    assert started == {mine_gone.id: True, mine_fine.id: False, theirs.id: False}


def test_refilled_tasks_say_whether_their_url_is_gone(tenant, callbacks_settings):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=1)
    first = make_task(tenant=tenant, url=A, run_at=past(3))
    [(task_id, token)] = claim()
    assert task_id == first.id
    mark(tenant, A)
    later = make_task(tenant=tenant, url=A, run_at=past(2))
    other_path = make_task(tenant=tenant, url=A.replace("/hook", "/other"), run_at=past(1))

    got = [lanes.refill(token=token, want=1, in_flight=0, taking=True, now=timezone.now()) for _ in range(2)]

    assert [(task.id, task.url_gone) for refill in got for task in refill.tasks] == [
        (later.id, True),
        (other_path.id, False),
    ]


def test_flag_costs_one_query_and_leaves_unmarked_tasks_alone(tenant, django_assert_num_queries):
    mark(tenant, A)
    tasks = [make_task(tenant=tenant, url=A), make_task(tenant=tenant, url=B)]
    with django_assert_num_queries(1):
        gone.flag(tasks)
    assert [task.url_gone for task in tasks] == [True, False]
