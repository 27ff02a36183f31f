"""A's portal session against B's ids: every portal URL that names an object answers 404, whatever the
method, and B's rows stay as they were; A's lists never show B's rows."""

import pytest
from django.urls import reverse

from callbacks.domain.vocabulary import TaskStatus
from callbacks.models import AuditLog
from portal.models import PortalLink
from tests.portal.conftest import snapshot

# (URL name, the world attribute giving the id) for every portal URL that takes one.
OBJECT_URLS = [
    ("portal:task", lambda w, status: w.tasks[status].pk),
    ("portal:task-retry", lambda w, status: w.tasks[status].pk),
    ("portal:task-cancel", lambda w, status: w.tasks[status].pk),
    ("portal:schedule", lambda w, status: w.schedule.pk),
    ("portal:gone-clear", lambda w, status: w.gone.pk),
]


@pytest.mark.parametrize("name,key", OBJECT_URLS, ids=[name for name, _ in OBJECT_URLS])
@pytest.mark.parametrize("status", [TaskStatus.DEAD, TaskStatus.RETRYING, TaskStatus.SCHEDULED])
def test_another_tenants_ids_are_404_for_get_and_post(portal, a, b, name, key, status):
    before = snapshot(b)
    audit_before = AuditLog.objects.filter(tenant=b.tenant).count()
    url = reverse(name, args=[key(b, status)])
    assert portal.get(url).status_code == 404
    assert portal.post(url, {"confirm": "yes"}).status_code == 404
    assert snapshot(b) == before
    assert AuditLog.objects.filter(tenant=b.tenant).count() == audit_before


@pytest.mark.parametrize("bad", ["not-an-id", "0", "00000000-0000-0000-0000-000000000000", "99999999"])
@pytest.mark.parametrize(
    "name", ["portal:task", "portal:task-retry", "portal:task-cancel", "portal:schedule", "portal:gone-clear"]
)
def test_ids_that_match_nothing_are_404_too(portal, name, bad):
    assert portal.get(reverse(name, args=[bad])).status_code == 404
    assert portal.post(reverse(name, args=[bad])).status_code == 404


def test_own_ids_work_on_the_same_urls(portal, a):
    """The 404s above are about the tenant, not the URLs: A's own ids answer."""
    assert portal.get(reverse("portal:task", args=[a.tasks[TaskStatus.DEAD].pk])).status_code == 200
    assert (
        portal.get(reverse("portal:task-cancel", args=[a.tasks[TaskStatus.SCHEDULED].pk])).status_code == 200
    )
    assert portal.get(reverse("portal:schedule", args=[a.schedule.pk])).status_code == 200
    # POST-only URLs say so for a GET on the tenant's own object.
    assert portal.get(reverse("portal:task-retry", args=[a.tasks[TaskStatus.DEAD].pk])).status_code == 405
    assert portal.get(reverse("portal:gone-clear", args=[a.gone.pk])).status_code == 405


def test_replay_of_all_dead_letters_replays_only_the_tenants_own(portal, a, b):
    before = snapshot(b)
    response = portal.post(reverse("portal:replay"), {"confirm": "yes"})
    assert response.status_code == 302
    a.tasks[TaskStatus.DEAD].refresh_from_db()
    assert a.tasks[TaskStatus.DEAD].status == TaskStatus.SCHEDULED
    assert snapshot(b) == before
    b.tasks[TaskStatus.DEAD].refresh_from_db()
    assert b.tasks[TaskStatus.DEAD].status == TaskStatus.DEAD


def test_the_replay_confirmation_lists_only_the_tenants_dead_letters(portal, a, b):
    page = portal.get(reverse("portal:replay"), {"since": ""}).content.decode()
    assert str(a.tasks[TaskStatus.DEAD].pk)[:8] in page
    assert str(b.tasks[TaskStatus.DEAD].pk)[:8] not in page
    assert "globex" not in page


LIST_PAGES = [
    ("portal:tasks", {}),
    ("portal:tasks", {"q": "globex"}),
    ("portal:tasks", {"q": "127.0.0.1"}),
    ("portal:tasks", {"status": "dead"}),
    ("portal:replay", {"since": "7d"}),
    ("portal:schedules", {}),
    ("portal:whitelist", {}),
    ("portal:gone", {}),
    ("portal:stats", {"window": "24h"}),
]


@pytest.mark.parametrize("name,query", LIST_PAGES)
def test_list_pages_never_show_another_tenants_rows(portal, a, b, name, query):
    response = portal.get(reverse(name), query)
    assert response.status_code == 200
    # Less the search box, which shows what was typed.
    page = response.content.decode().replace(f'value="{query.get("q")}"', "")
    # B's name is in every one of its rows: its URLs' paths, business ids, hosts, schedule's name.
    assert "globex" not in page
    for task in b.tasks.values():
        assert str(task.pk)[:8] not in page
    assert str(b.schedule.pk) not in page


def test_a_search_for_another_tenants_task_id_finds_nothing(portal, b):
    task = b.tasks[TaskStatus.DEAD]
    page = portal.get(reverse("portal:tasks"), {"q": str(task.pk)}).content.decode()
    assert "No callbacks match." in page


def test_the_portal_never_lists_another_tenants_links(portal, a, b):
    """Nothing in the portal shows links at all; B's sessions are untouched by A's sign-in."""
    from tests.portal.conftest import signed_in

    other = signed_in(b.tenant)
    assert other.get(reverse("portal:tasks")).status_code == 200
    assert portal.get(reverse("portal:tasks")).status_code == 200
    assert PortalLink.objects.filter(tenant=b.tenant).count() == 1


def test_the_404_is_the_portals_own_page_and_says_nothing_of_the_owner(portal, b):
    response = portal.get(reverse("portal:task", args=[b.tasks[TaskStatus.DEAD].pk]))
    page = response.content.decode()
    assert response.status_code == 404
    assert "No such callback." in page and "Task Center callbacks — acme" in page
    assert "globex" not in page
