"""A tenant's schedules are bounded: a quota (SCHEDULES_PER_TENANT) and a shortest interval between
fires (SCHEDULE_MIN_INTERVAL_SECONDS), so one tenant's flood of every-second schedules cannot make the
leader skip another tenant's fires. Refusals are 400s naming the field."""

import pytest

from callbacks.models import CallbackSchedule

URL = "http://127.0.0.1:9/hook"
pytestmark = pytest.mark.django_db


@pytest.fixture
def installation_defaults(settings):
    """The installation's limits as shipped (the test settings lower the interval for other tests)."""
    settings.CALLBACKS = {
        **settings.CALLBACKS,
        "SCHEDULE_MIN_INTERVAL_SECONDS": 60,
        "SCHEDULES_PER_TENANT": 100,
    }


def schedule(api, cron, name="s"):
    return api.post(
        "/api/v1/schedules/", {"name": name, "cron": cron, "task_template": {"url": URL}}, format="json"
    )


@pytest.mark.parametrize("cron", ["* * * * * *", "*/30 * * * * *", "0,30 * * * * *", "0-1 0 * * * *"])
def test_schedules_firing_more_often_than_the_minimum_interval_are_refused(api, installation_defaults, cron):
    response = schedule(api, cron)

    assert response.status_code == 400, response.content
    assert set(response.json()["error"]["fields"]) == {"cron"}
    assert not CallbackSchedule.objects.exists()


def test_a_schedule_every_minute_is_accepted(api, installation_defaults):
    assert schedule(api, "* * * * *").status_code == 201
    assert schedule(api, "0 * * * * *", name="s6").status_code == 201


def test_a_tenant_holds_at_most_its_quota_of_schedules(api, other_api, settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "SCHEDULES_PER_TENANT": 3}
    for n in range(3):
        assert schedule(api, "0 * * * *", name=f"s{n}").status_code == 201

    refused = schedule(api, "0 * * * *", name="one-too-many")

    assert refused.status_code == 400
    assert set(refused.json()["error"]["fields"]) == {"schedules"}
    assert CallbackSchedule.objects.filter(tenant=api_tenant(api)).count() == 3
    assert schedule(other_api, "0 * * * *", name="theirs").status_code == 201  # per tenant


def api_tenant(api):
    return CallbackSchedule.objects.first().tenant
