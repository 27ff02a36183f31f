"""Schedules, queues, the audit log, run-time settings and the monitoring tables."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from callbacks.models import AuditLog, Heartbeat, QueueState, RuntimeSetting
from callbacks.services.audit import audit_record
from callbacks.services.schedules import schedule_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def schedule(tenant):
    return schedule_create(
        tenant=tenant,
        data={
            "name": "nightly",
            "cron": "30 2 * * *",
            "timezone": "Europe/Berlin",
            "task_template": {"url": "https://a.example.com/nightly"},
        },
        actor_type="user",
        actor="x",
    )


def test_schedule_page_shows_the_next_five_runs(admin_client, schedule):
    response = admin_client.get(reverse("admin:callbacks_callbackschedule_change", args=[schedule.pk]))

    html = response.content.decode()
    runs = html.split('<ol class="tc-runs">')[1].split("</ol>")[0]
    assert runs.count("<li>") == 5
    # 02:30 in Berlin is 00:30 or 01:30 UTC depending on the season.
    assert all(":30:00" in item for item in runs.split("<li>")[1:])


def test_schedule_pause_and_resume(admin_client, schedule):
    url = reverse("admin:callbacks_callbackschedule_changelist")

    admin_client.post(url, {"action": "pause", ACTION_CHECKBOX_NAME: [str(schedule.pk)], "index": 0})
    schedule.refresh_from_db()
    assert schedule.paused
    admin_client.post(url, {"action": "resume", ACTION_CHECKBOX_NAME: [str(schedule.pk)], "index": 0})
    schedule.refresh_from_db()
    assert not schedule.paused
    assert AuditLog.objects.filter(actor="admin", object_id=str(schedule.pk)).count() == 2


def test_queue_pause_and_resume(admin_client):
    QueueState.objects.create(name="billing")
    url = reverse("admin:callbacks_queuestate_changelist")

    admin_client.post(url, {"action": "pause", ACTION_CHECKBOX_NAME: ["billing"], "index": 0})
    assert QueueState.objects.get(name="billing").paused
    admin_client.post(url, {"action": "resume", ACTION_CHECKBOX_NAME: ["billing"], "index": 0})
    assert not QueueState.objects.get(name="billing").paused


def test_audit_log_is_read_only_newest_first_and_filters(admin_client, tenant):
    for action in ("task.retry", "task.cancel"):
        audit_record(
            actor_type="user",
            actor="ops",
            tenant=tenant,
            action=action,
            obj=tenant,
            before=None,
            after={"n": 1},
        )
    audit_record(
        actor_type="tenant",
        actor="api",
        tenant=None,
        action="task.retry",
        obj=tenant,
        before=None,
        after=None,
    )
    url = reverse("admin:callbacks_auditlog_changelist")

    listing = admin_client.get(url)
    assert [e.action for e in listing.context["cl"].result_list][:1] == ["task.retry"]
    assert [e.actor for e in listing.context["cl"].result_list][0] == "api"  # newest first

    filtered = admin_client.get(url, {"action": "task.retry", "actor_type": "user", "tenant": tenant.pk})
    assert [(e.action, e.actor) for e in filtered.context["cl"].result_list] == [("task.retry", "ops")]

    entry = AuditLog.objects.first()
    detail = admin_client.get(reverse("admin:callbacks_auditlog_change", args=[entry.pk]))
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    assert admin_client.get(reverse("admin:callbacks_auditlog_add")).status_code == 403


def test_runtime_setting_is_checked_and_saved_through_the_service(admin_client):
    url = reverse("admin:callbacks_runtimesetting_add")

    refused = admin_client.post(url, {"key": "MAX_RETRIES", "value": "99"})
    assert refused.status_code == 200 and "between 0 and 20" in refused.content.decode()
    assert not RuntimeSetting.objects.exists()

    saved = admin_client.post(url, {"key": "MAX_RETRIES", "value": "7"})
    assert saved.status_code == 302
    assert RuntimeSetting.objects.get(key="MAX_RETRIES").value == 7
    assert AuditLog.objects.filter(action="settings.update", actor="admin").count() == 1

    admin_client.post(reverse("admin:callbacks_runtimesetting_delete", args=["MAX_RETRIES"]), {"post": "yes"})
    assert not RuntimeSetting.objects.exists()


def test_heartbeats_show_who_is_alive(admin_client):
    now = timezone.now()
    Heartbeat.objects.create(role="worker", name="host:1", seen_at=now)
    Heartbeat.objects.create(role="worker", name="host:2", seen_at=now - timedelta(hours=1))

    response = admin_client.get(reverse("admin:callbacks_heartbeat_changelist"))

    rows = {beat.name: beat for beat in response.context["cl"].result_list}
    admin = response.context["cl"].model_admin
    assert admin.alive(rows["host:1"]) and not admin.alive(rows["host:2"])
    assert admin_client.get(reverse("admin:callbacks_heartbeat_add")).status_code == 403


@pytest.mark.parametrize(
    "name",
    [
        "callbacktask",
        "taskexecution",
        "tenant",
        "callbackschedule",
        "queuestate",
        "urlwhitelistentry",
        "circuitbreaker",
        "auditlog",
        "runtimesetting",
    ],
)
def test_every_callbacks_list_renders(admin_client, tenant, name):
    assert admin_client.get(reverse(f"admin:callbacks_{name}_changelist")).status_code == 200


@pytest.mark.parametrize(
    "model", ["callbacks_heartbeat", "monitoring_maintenancerun", "callbacks_attemptrollup"]
)
def test_every_monitoring_list_renders(admin_client, model):
    """The monitoring admin's lists: the engine's heartbeats and roll-ups, and maintenance runs."""
    assert admin_client.get(reverse(f"admin:{model}_changelist")).status_code == 200


def test_admin_index_links_the_console_pages(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()

    for url in (
        "/admin/dashboard/",
        reverse("admin:callbacks_callbacktask_replay_dead"),
        reverse("admin:callbacks_urlwhitelistentry_check"),
        reverse("admin:callbacks_runtimesetting_changelist"),
    ):
        assert f'href="{url}"' in html
