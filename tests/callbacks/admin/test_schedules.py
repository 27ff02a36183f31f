"""Schedules in the admin: created and edited through services.schedules with each refusal on its field and
nothing saved, fired now, paused and resumed by buttons and actions, the callbacks each fired listed."""

import json

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from callbacks.models import AuditLog, CallbackSchedule, CallbackTask
from callbacks.services.schedules import schedule_create
from tests.factories import make_task

pytestmark = pytest.mark.django_db

ADD = reverse("admin:callbacks_callbackschedule_add")
LIST = reverse("admin:callbacks_callbackschedule_changelist")
TEMPLATE = {"url": "https://a.example.com/nightly", "body": {"kind": "nightly"}}


@pytest.fixture
def schedule(tenant):
    return schedule_create(
        tenant=tenant,
        data={"name": "nightly", "cron": "30 2 * * *", "task_template": TEMPLATE},
        actor_type="user",
        actor="x",
    )


def _change(schedule):
    return reverse("admin:callbacks_callbackschedule_change", args=[schedule.pk])


def _form(schedule, **changes):
    data = {
        "name": schedule.name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "missed_policy": schedule.missed_policy,
        "task_template": json.dumps(schedule.task_template),
    }
    return {**data, **changes}


def _errors(response) -> dict:
    form = response.context["adminform"].form
    return {name: list(errors) for name, errors in form.errors.items()}


def test_a_schedule_is_added_through_the_service(admin_client, tenant):
    form = admin_client.get(ADD).content.decode()
    assert 'name="task_template"' in form and 'id="tc-fire-now"' not in form

    response = admin_client.post(
        ADD,
        {
            "tenant": tenant.pk,
            "name": "reports",
            "cron": "*/15  * * * *",
            "timezone": "Europe/Berlin",
            "missed_policy": "fire_once",
            "task_template": json.dumps(TEMPLATE),
        },
    )

    assert response.status_code == 302
    schedule = CallbackSchedule.objects.get()
    assert (schedule.cron, schedule.timezone, schedule.missed_policy) == (
        "*/15 * * * *",
        "Europe/Berlin",
        "fire_once",
    )
    assert schedule.next_fire_at is not None
    assert AuditLog.objects.filter(action="schedule.create", actor="admin").count() == 1


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"cron": "61 * * * *"}, "cron", "is not a valid cron expression"),
        ({"cron": "* * *"}, "cron", "must have 5 fields"),
        ({"timezone": "Mars/Olympus"}, "timezone", "is not an IANA time zone"),
        (
            {"task_template": json.dumps({"url": "ftp://a.example.com/"})},
            "task_template",
            "url: only http and https",
        ),
        ({"task_template": json.dumps({"url": "http://127.0.0.2/"})}, "task_template", "url: "),
        (
            {"task_template": json.dumps({**TEMPLATE, "run_at": "2030-01-01T00:00:00Z"})},
            "task_template",
            "run_at",
        ),
        ({"task_template": "{not json"}, "task_template", "Enter a valid JSON."),
    ],
)
def test_an_invalid_change_is_refused_on_its_field_and_nothing_is_saved(
    admin_client, schedule, settings, changes, field, reason
):
    settings.CALLBACKS = {**settings.CALLBACKS, "ALLOWED_NETWORKS": []}
    before = CallbackSchedule.objects.values().get(pk=schedule.pk)

    response = admin_client.post(_change(schedule), _form(schedule, **changes))

    assert response.status_code == 200
    errors = _errors(response)
    assert list(errors) == [field]
    assert any(reason in text for text in errors[field]), errors
    assert CallbackSchedule.objects.values().get(pk=schedule.pk) == before
    assert not AuditLog.objects.filter(action="schedule.update").exists()


def test_a_cron_firing_more_often_than_the_minimum_interval_is_refused(admin_client, schedule, settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "SCHEDULE_MIN_INTERVAL_SECONDS": 60}

    response = admin_client.post(_change(schedule), _form(schedule, cron="*/10 * * * * *"))

    assert "at least 60 s between fires" in " ".join(_errors(response)["cron"])
    assert CallbackSchedule.objects.get(pk=schedule.pk).cron == "30 2 * * *"


def test_adding_past_the_quota_or_with_a_taken_name_is_refused(admin_client, tenant, schedule, settings):
    taken = admin_client.post(ADD, {**_form(schedule), "tenant": tenant.pk})
    assert _errors(taken) == {"name": ["the tenant has a schedule of this name already"]}

    settings.CALLBACKS = {**settings.CALLBACKS, "SCHEDULES_PER_TENANT": 1}
    full = admin_client.post(ADD, {**_form(schedule, name="other"), "tenant": tenant.pk})
    assert _errors(full) == {"__all__": ["schedules: at most 1 schedules per tenant; delete one first"]}
    assert CallbackSchedule.objects.count() == 1


def test_a_valid_change_is_saved_and_retimed(admin_client, schedule):
    response = admin_client.post(_change(schedule), _form(schedule, cron="0 * * * *", timezone="Asia/Tokyo"))

    assert response.status_code == 302
    schedule.refresh_from_db()
    assert (schedule.cron, schedule.timezone) == ("0 * * * *", "Asia/Tokyo")
    assert schedule.next_fire_at.minute == 0
    audit = AuditLog.objects.get(action="schedule.update", actor="admin")
    assert audit.before["cron"] == "30 2 * * *" and audit.after["cron"] == "0 * * * *"


def test_fire_now_creates_one_task_from_the_template_and_leaves_the_next_fire(admin_client, schedule):
    next_fire_at = schedule.next_fire_at

    response = admin_client.post(reverse("admin:callbacks_callbackschedule_fire_now", args=[schedule.pk]))

    assert response.status_code == 302
    task = CallbackTask.objects.get()
    assert (task.schedule_id, task.url, task.tenant_id) == (schedule.pk, TEMPLATE["url"], schedule.tenant_id)
    assert json.loads(task.payload) == TEMPLATE["body"]
    schedule.refresh_from_db()
    assert schedule.next_fire_at == next_fire_at
    assert AuditLog.objects.filter(action="schedule.fire_now", actor="admin").count() == 1
    page = admin_client.get(_change(schedule)).content.decode()
    assert "Fired: callback" in page and str(task.pk)[:8] in page


def test_fire_now_refuses_a_get_and_reports_a_template_no_longer_valid(admin_client, schedule, settings):
    url = reverse("admin:callbacks_callbackschedule_fire_now", args=[schedule.pk])
    assert admin_client.get(url).status_code == 403

    CallbackSchedule.objects.filter(pk=schedule.pk).update(task_template={"url": "gopher://x.example.com/"})
    response = admin_client.post(url, follow=True)

    assert "Not fired: task_template: url: only http and https" in response.content.decode()
    assert not CallbackTask.objects.exists()


def test_fire_now_as_a_list_action(admin_client, schedule):
    admin_client.post(LIST, {"action": "fire_now", ACTION_CHECKBOX_NAME: [str(schedule.pk)], "index": 0})

    assert CallbackTask.objects.filter(schedule=schedule).count() == 1


def test_pause_and_resume_buttons(admin_client, schedule):
    admin_client.post(reverse("admin:callbacks_callbackschedule_pause", args=[schedule.pk]))
    schedule.refresh_from_db()
    assert schedule.paused and schedule.next_fire_at is None
    page = admin_client.get(_change(schedule)).content.decode()
    assert 'id="tc-resume"' in page and 'id="tc-pause"' not in page

    admin_client.post(reverse("admin:callbacks_callbackschedule_resume", args=[schedule.pk]))
    schedule.refresh_from_db()
    assert not schedule.paused and schedule.next_fire_at is not None


def test_the_list_says_active_or_paused_in_words(admin_client, tenant, schedule):
    schedule_create(
        tenant=tenant,
        data={"name": "held", "cron": "0 * * * *", "task_template": TEMPLATE, "paused": True},
        actor_type="user",
        actor="x",
    )

    html = admin_client.get(LIST).content.decode()

    assert '<span class="tc-badge tc-schedule-active">active</span>' in html
    assert '<span class="tc-badge tc-schedule-paused">paused</span>' in html
    paused = admin_client.get(LIST, {"state": "paused"}).context["cl"].result_list
    active = admin_client.get(LIST, {"state": "active"}).context["cl"].result_list
    assert ([s.name for s in paused], [s.name for s in active]) == (["held"], ["nightly"])


def test_the_page_lists_the_callbacks_it_fired_newest_first_and_links_the_filtered_list(
    admin_client, tenant, schedule
):
    other = make_task(tenant=tenant, url="https://b.example.com/")
    fired = [make_task(tenant=tenant, url=TEMPLATE["url"], schedule=schedule) for _ in range(3)]
    fired[-1].status = "dead"
    fired[-1].save()

    html = admin_client.get(_change(schedule)).content.decode()

    section = html.split('id="tc-fired"')[1]
    shown = [str(task.pk)[:8] for task in sorted(fired, key=lambda t: t.created_at, reverse=True)]
    positions = [section.index(short) for short in shown]
    assert positions == sorted(positions)
    assert str(other.pk)[:8] not in section
    assert "tc-status-dead" in section
    assert reverse("admin:callbacks_callbacktask_change", args=[fired[0].pk]) in section
    filtered = admin_client.get(
        reverse("admin:callbacks_callbacktask_changelist"), {"schedule": str(schedule.pk)}
    )
    assert {task.pk for task in filtered.context["cl"].result_list} == {task.pk for task in fired}


def test_the_task_list_filter_accepts_any_schedule_id_and_ignores_a_malformed_one(admin_client, tenant):
    response = admin_client.get(reverse("admin:callbacks_callbacktask_changelist"), {"schedule": "nonsense"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


def test_a_viewer_sees_the_schedule_but_cannot_change_or_fire_it(client, schedule):
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_callbackschedule"))
    client.force_login(viewer)

    page = client.get(_change(schedule))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode() and 'id="tc-fire-now"' not in page.content.decode()
    assert client.post(_change(schedule), _form(schedule, cron="0 * * * *")).status_code == 403
    assert (
        client.post(reverse("admin:callbacks_callbackschedule_fire_now", args=[schedule.pk])).status_code
        == 403
    )
    assert (
        client.post(reverse("admin:callbacks_callbackschedule_pause", args=[schedule.pk])).status_code == 403
    )
    assert client.get(ADD).status_code == 403
    assert not CallbackTask.objects.exists()
    assert CallbackSchedule.objects.get(pk=schedule.pk).cron == "30 2 * * *"


def test_a_refusal_only_the_save_meets_is_reported_and_nothing_is_saved(
    admin_client, tenant, schedule, monkeypatch
):
    """Another schedule took the name between the form's check and the save: the service refuses, the
    admin's transaction is rolled back, and the operator is told why."""
    monkeypatch.setattr("callbacks.admin.schedules.schedule_check", lambda **kwargs: {})

    response = admin_client.post(ADD, {**_form(schedule), "tenant": tenant.pk}, follow=True)

    assert "Not saved: name: the tenant has a schedule of this name already" in response.content.decode()
    assert CallbackSchedule.objects.count() == 1
    assert not AuditLog.objects.filter(action="schedule.create", actor="admin").exists()
