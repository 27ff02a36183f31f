"""The tenant's callbacks in the portal: list, search, filters, pages; the task page with secrets masked;
retry, cancel (after a confirmation) and the replay of dead letters, audited as the tenant through its link."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from callbacks.domain.vocabulary import ActorType, TaskStatus
from callbacks.models import AuditLog, CallbackTask, TaskEvent
from portal.views.common import PER_PAGE
from tests.factories import make_task

TASKS = reverse("portal:tasks")


def rows(response) -> set[str]:
    """The task ids listed, as the rows' data-task attributes give them."""
    import re

    return set(re.findall(r'data-task="([0-9a-f-]+)"', response.content.decode()))


def test_the_list_shows_the_tenants_tasks_with_badges_and_legend(portal, a):
    response = portal.get(TASKS)
    assert rows(response) == {str(task.pk) for task in a.tasks.values()}
    page = response.content.decode()
    assert 'class="tc-badge tc-status-dead"' in page
    assert 'class="tc-legend"' in page


def test_search_by_business_id_id_prefix_and_url(portal, a):
    dead = a.tasks[TaskStatus.DEAD]
    assert rows(portal.get(TASKS, {"q": "acme-dead"})) == {str(dead.pk)}
    assert rows(portal.get(TASKS, {"q": str(dead.pk)[:6]})) >= {str(dead.pk)}
    assert rows(portal.get(TASKS, {"q": "/acme/retrying"})) == {str(a.tasks[TaskStatus.RETRYING].pk)}


def test_filters_by_status_queue_and_created_window(portal, a):
    assert rows(portal.get(TASKS, {"status": "dead"})) == {str(a.tasks[TaskStatus.DEAD].pk)}
    assert rows(portal.get(TASKS, {"queue": "other"})) == set()
    assert len(rows(portal.get(TASKS, {"queue": "default"}))) == 4
    old = a.tasks[TaskStatus.SUCCEEDED]
    CallbackTask.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    assert str(old.pk) not in rows(portal.get(TASKS, {"created": "24h"}))
    assert str(old.pk) in rows(portal.get(TASKS, {"created": "7d"}))


def test_a_bad_filter_names_the_field_and_lists_nothing(portal, a):
    response = portal.get(TASKS, {"status": "lost", "created": "1y"})
    page = response.content.decode()
    assert rows(response) == set()
    assert "Status: Select a valid choice" in page
    assert "Created: Select a valid choice" in page
    assert (
        "page: Ensure this value is less than or equal to 200."
        in portal.get(TASKS, {"page": "201"}).content.decode()
    )


def test_pages_go_on_without_counting(portal, a, django_assert_max_num_queries):
    for _ in range(PER_PAGE + 5):
        make_task(tenant=a.tenant, url="http://127.0.0.1:9/acme/bulk")
    first = portal.get(TASKS, {"q": "/acme/bulk"})
    assert len(rows(first)) == PER_PAGE
    assert "Older" in first.content.decode() and "Newer" not in first.content.decode()
    second = portal.get(TASKS, {"q": "/acme/bulk", "page": "2"})
    assert len(rows(second)) == 5
    assert not rows(first) & rows(second)
    assert "Newer" in second.content.decode()
    with django_assert_max_num_queries(12) as queries:
        portal.get(TASKS)
    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)


def test_the_task_page_masks_secrets_as_the_admin_does(portal, a):
    task = a.tasks[TaskStatus.DEAD]
    page = portal.get(reverse("portal:task", args=[task.pk])).content.decode()
    assert "acme-header-secret" not in page
    assert "acme-reply-secret" not in page
    assert "acme-cookie-secret" not in page
    assert "********" in page
    assert "X-Order" in page  # headers that are no secret are shown
    assert 'id="tc-timeline"' in page
    assert page.count('class="tc-attempt"') == 4
    assert page.count('class="tc-attempt-detail"') == 4
    assert "Status history" in page and "created" in page


def test_retry_sends_a_dead_task_again_audited_as_the_tenants_link(portal, a):
    task = a.tasks[TaskStatus.DEAD]
    response = portal.post(reverse("portal:task-retry", args=[task.pk]))
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.status == TaskStatus.SCHEDULED
    row = AuditLog.objects.get(action="task.retry", object_id=str(task.pk))
    assert (row.actor_type, row.actor) == (ActorType.TENANT, f"portal link {portal.link.pk}")
    assert TaskEvent.objects.filter(task=task, note=f"retried by portal link {portal.link.pk}").exists()


def test_retry_of_a_task_that_cannot_be_is_said_so(portal, a):
    task = a.tasks[TaskStatus.SUCCEEDED]
    response = portal.post(reverse("portal:task-retry", args=[task.pk]), follow=True)
    assert "only failed, dead or retrying tasks can be retried" in response.content.decode()
    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED


def test_cancel_asks_first_then_cancels(portal, a):
    task = a.tasks[TaskStatus.SCHEDULED]
    url = reverse("portal:task-cancel", args=[task.pk])
    asked = portal.get(url)
    assert "Cancel this callback?" in asked.content.decode()
    portal.post(url)  # without "yes": the question again, nothing done
    task.refresh_from_db()
    assert task.status == TaskStatus.SCHEDULED
    assert portal.post(url, {"confirm": "yes"}).status_code == 302
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    row = AuditLog.objects.get(action="task.cancel", object_id=str(task.pk))
    assert (row.actor_type, row.actor) == (ActorType.TENANT, f"portal link {portal.link.pk}")


def test_replay_since_a_duration_lists_then_replays_those_only(portal, a):
    old = a.tasks[TaskStatus.DEAD]
    CallbackTask.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(hours=10))
    recent = make_task(
        tenant=a.tenant,
        url="http://127.0.0.1:9/acme/recent",
        status=TaskStatus.DEAD,
        finished_at=timezone.now(),
    )
    confirm = portal.get(reverse("portal:replay"), {"since": "6h"})
    page = confirm.content.decode()
    assert "<strong>1</strong> dead letter " in page
    assert str(recent.pk)[:8] in page and str(old.pk)[:8] not in page
    since_at = confirm.context["since_at"]
    response = portal.post(reverse("portal:replay"), {"confirm": "yes", "since_at": since_at.isoformat()})
    assert response.status_code == 302
    recent.refresh_from_db(), old.refresh_from_db()
    assert (recent.status, old.status) == (TaskStatus.SCHEDULED, TaskStatus.DEAD)
    row = AuditLog.objects.get(action="task.replay_dead")
    assert (row.actor_type, row.actor, row.tenant) == (
        ActorType.TENANT,
        f"portal link {portal.link.pk}",
        a.tenant,
    )


def test_replay_refuses_a_duration_it_cannot_read(portal, a):
    page = portal.get(reverse("portal:replay"), {"since": "six hours"}).content.decode()
    assert "since: Use a number and a unit m, h or d" in page
    assert "Yes, replay" not in page
    assert portal.post(reverse("portal:replay"), {}).status_code == 302  # not confirmed: nothing done
    a.tasks[TaskStatus.DEAD].refresh_from_db()
    assert a.tasks[TaskStatus.DEAD].status == TaskStatus.DEAD
