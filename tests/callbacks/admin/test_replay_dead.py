"""The replay-dead page: `since` as an age (the command's 30m/6h/2d, the same parser) or a time, and the
dead letters listed with the total before the operator confirms."""

from datetime import UTC, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from callbacks.models import TaskStatus
from tests.factories import make_task

pytestmark = pytest.mark.django_db

PAGE = reverse("admin:callbacks_callbacktask_replay_dead")


def dead(tenant, hours_ago: float, **fields):
    return make_task(
        tenant=tenant,
        url="https://a.example.com/hook",
        status=TaskStatus.DEAD,
        finished_at=timezone.now() - timedelta(hours=hours_ago),
        last_outcome="http_5xx",
        last_status_code=503,
        attempts=4,
        **fields,
    )


def test_an_age_lists_what_died_within_it_and_the_confirmation_replays_exactly_that(admin_client, tenant):
    recent, older = dead(tenant, 2), dead(tenant, 10)

    listed = admin_client.get(PAGE, {"tenant": tenant.pk, "since": "6h"})

    assert listed.context["count"] == 1
    assert [task.pk for task in listed.context["tasks"]] == [recent.pk]
    html = listed.content.decode()
    table = html.split('id="tc-replay-list"')[1].split("</table>")[0]
    assert str(recent.pk)[:8] in table and str(older.pk)[:8] not in table
    assert "acme" in table and "https://a.example.com/hook" in table and "http_5xx 503" in table
    since = listed.context["since_value"]
    assert f'name="since" value="{since}"' in html  # the age fixed as a time when listed

    admin_client.post(PAGE, {"tenant": tenant.pk, "since": since, "confirm": "yes"})
    recent.refresh_from_db()
    older.refresh_from_db()
    assert (recent.status, older.status) == (TaskStatus.SCHEDULED, TaskStatus.DEAD)


@pytest.mark.parametrize("text", ["30m", "2d", "3h"])
def test_the_commands_ages_are_accepted(admin_client, text):
    response = admin_client.get(PAGE, {"since": text})

    assert response.context["form"].is_valid(), response.context["form"].errors
    assert response.context["count"] == 0


def test_a_time_is_read_as_utc_unless_it_has_an_offset(admin_client, tenant):
    task = dead(tenant, 3)
    before = (task.finished_at - timedelta(minutes=5)).astimezone(UTC)
    after = task.finished_at + timedelta(minutes=5)

    assert admin_client.get(PAGE, {"since": f"{before:%Y-%m-%d %H:%M}"}).context["count"] == 1
    assert admin_client.get(PAGE, {"since": f"{after.astimezone(UTC):%Y-%m-%d %H:%M}"}).context["count"] == 0
    shifted = after.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="minutes") + "+02:00"
    assert admin_client.get(PAGE, {"since": shifted}).context["count"] == 1  # 2 h earlier in UTC


@pytest.mark.parametrize(
    ("text", "reason"), [("yesterday", "an age like 30m, 6h or 2d"), ("6 hours", "ISO 8601")]
)
def test_an_unreadable_since_is_a_field_error(admin_client, text, reason):
    response = admin_client.get(PAGE, {"since": text})

    assert reason in " ".join(response.context["form"].errors["since"])
    assert response.context.get("count") is None


def test_the_first_fifty_are_listed_newest_first_with_the_total(admin_client, tenant):
    tasks = [dead(tenant, hours_ago=index / 10) for index in range(55)]

    response = admin_client.get(PAGE, {"tenant": tenant.pk})

    assert response.context["count"] == 55
    assert [task.pk for task in response.context["tasks"]] == [task.pk for task in tasks[:50]]
    html = response.content.decode()
    assert "55 dead letters" in html and "the other 5 are replayed too" in html
    assert html.split('id="tc-replay-list"')[1].count("<tr>") == 50 + 1  # the heading row
