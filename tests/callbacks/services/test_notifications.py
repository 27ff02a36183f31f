"""Failure notifications: dead letters and opened breakers become callbacks to the tenant's URL."""

import json

import pytest

from callbacks.delivery.instruments.accounting import task_finished
from callbacks.models import CallbackTask, TaskStatus
from callbacks.services import notifications
from tests.factories import make_monitored_task

NOTIFY_URL = "http://127.0.0.1:9100/events"


@pytest.fixture
def notified_tenant(tenant):
    tenant.notification_url = NOTIFY_URL
    tenant.save(update_fields=["notification_url"])
    return tenant


def _notifications():
    return CallbackTask.objects.filter(business_id__startswith=notifications.NOTIFICATION_PREFIX)


def test_a_dead_letter_notifies_its_tenant_once(notified_tenant):
    task = make_monitored_task(
        tenant=notified_tenant, status=TaskStatus.DEAD, attempts=4, last_outcome="http_5xx"
    )
    task_finished(task, TaskStatus.DEAD)
    task_finished(task, TaskStatus.DEAD)  # a repeated hook call makes no second event

    [event_task] = _notifications()
    assert event_task.url == NOTIFY_URL and event_task.status == TaskStatus.SCHEDULED
    event = json.loads(event_task.payload)
    assert event["type"] == "callback.dead"
    assert event["data"]["task_id"] == str(task.id)
    assert event["data"]["attempts"] == 4


def test_no_notification_about_a_notification(notified_tenant):
    task = make_monitored_task(tenant=notified_tenant, status=TaskStatus.DEAD)
    task_finished(task, TaskStatus.DEAD)
    [event_task] = _notifications()
    task_finished(event_task, TaskStatus.DEAD)
    assert _notifications().count() == 1


def test_no_notification_without_a_url_or_for_success(tenant):
    task = make_monitored_task(tenant=tenant, status=TaskStatus.DEAD)
    task_finished(task, TaskStatus.DEAD)
    assert not _notifications().exists()


def test_success_does_not_notify(notified_tenant):
    task_finished(
        make_monitored_task(tenant=notified_tenant, status=TaskStatus.SUCCEEDED), TaskStatus.SUCCEEDED
    )
    assert not _notifications().exists()


def test_breaker_opened_notifies_tenants_with_work_for_the_origin(notified_tenant, other_api):
    other = other_api.tenant
    other.notification_url = "http://127.0.0.1:9200/other"
    other.save(update_fields=["notification_url"])
    make_monitored_task(tenant=notified_tenant, url="http://localhost:9300/x")
    make_monitored_task(
        tenant=other, url="http://localhost:9300/y", status=TaskStatus.SUCCEEDED
    )  # nothing pending

    made = notifications.notify_breaker_opened(origin="http://localhost:9300", data={"failures": 5})
    assert [task.tenant_id for task in made] == [notified_tenant.id]
    event = json.loads(made[0].payload)
    assert event["type"] == "breaker.opened" and event["data"]["origin"] == "http://localhost:9300"


def test_breaker_opened_tells_each_tenant_only_its_own_last_error(notified_tenant, other_api):
    other = other_api.tenant
    other.notification_url = "http://127.0.0.1:9200/other"
    other.save(update_fields=["notification_url"])
    make_monitored_task(tenant=notified_tenant, url="http://localhost:9300/x", last_error="HTTP 502")
    make_monitored_task(
        tenant=other, url="http://localhost:9300/payroll", last_error="timeout: /payroll?id=7"
    )

    made = notifications.notify_breaker_opened(
        origin="http://localhost:9300", data={"failures": 5, "last_error": "timeout: /payroll?id=7"}
    )

    errors = {task.tenant_id: json.loads(task.payload)["data"]["last_error"] for task in made}
    assert errors == {notified_tenant.id: "HTTP 502", other.id: "timeout: /payroll?id=7"}


def test_breaker_on_the_notification_host_itself_is_not_reported(notified_tenant):
    make_monitored_task(tenant=notified_tenant, url="http://127.0.0.1:9100/other")
    assert notifications.notify_breaker_opened(origin="http://127.0.0.1:9100") == []


def test_unknown_event_type_is_refused(notified_tenant):
    with pytest.raises(ValueError):
        notifications.notify_failure(tenant=notified_tenant, event_type="callback.odd", data={})
