"""Schedules with their next runs, the whitelist and the gone URLs in the portal."""

from django.urls import reverse

from callbacks.domain.schedule import next_runs
from callbacks.domain.vocabulary import ActorType
from callbacks.models import AuditLog, GoneUrl


def test_schedules_list_their_next_runs(portal, a):
    page = portal.get(reverse("portal:schedules")).content.decode()
    assert "acme-nightly" in page and "0 3 * * *" in page
    first = next_runs(a.schedule, 1)[0]
    assert f"{first:%Y-%m-%d} 03:00:00" in page


def test_the_schedule_page_shows_ten_next_runs_and_masks_its_template(portal, a):
    page = portal.get(reverse("portal:schedule", args=[a.schedule.pk])).content.decode()
    assert page.count('<li class="tc-time">') == 10
    assert "sched-secret" not in page and "X-Api-Key" in page


def test_the_whitelist_is_listed_read_only(portal, a):
    page = portal.get(reverse("portal:whitelist")).content.decode()
    assert "acme.example.com" in page and "acme&#x27;s receiver" in page
    assert "Not enforced" in page
    assert "<form" not in page.split('id="tc-whitelist"')[1]


def test_a_gone_url_is_cleared_through_the_gone_service(portal, a):
    page = portal.get(reverse("portal:gone")).content.decode()
    assert "https://acme.example.com/gone" in page
    response = portal.post(reverse("portal:gone-clear", args=[a.gone.pk]), follow=True)
    assert "is called again from now on" in response.content.decode()
    assert not GoneUrl.objects.filter(pk=a.gone.pk).exists()
    row = AuditLog.objects.get(action="gone_url.clear")
    assert (row.actor_type, row.actor) == (ActorType.TENANT, f"portal link {portal.link.pk}")
