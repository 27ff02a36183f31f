"""Gone URLs (services/gone.py): marked once with one notification, cleared by the tenant or an operator."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from callbacks.models import AuditLog, CallbackTask, GoneUrl
from callbacks.services import notifications
from callbacks.services.gone import gone_url_clear, gone_url_mark
from tests.factories import make_task

pytestmark = pytest.mark.django_db
URL = "http://127.0.0.1:9200/hook"
NOTIFY_URL = "http://127.0.0.1:9100/events"


def events():
    return [
        json.loads(task.payload)
        for task in CallbackTask.objects.filter(business_id__startswith=notifications.NOTIFICATION_PREFIX)
    ]


def test_a_url_is_marked_once_and_its_tenant_told_once(tenant):
    tenant.notification_url = NOTIFY_URL
    tenant.save(update_fields=["notification_url"])
    first, second = make_task(tenant=tenant, url=URL), make_task(tenant=tenant, url=URL)

    gone = gone_url_mark(tenant_id=tenant.id, url=URL, task_id=first.id)
    again = gone_url_mark(tenant_id=tenant.id, url=URL, task_id=second.id)

    assert again is None and GoneUrl.objects.get() == gone and gone.task_id == first.id
    [event] = events()
    assert event["type"] == "url.gone" and event["data"]["url"] == URL
    assert event["data"]["task_id"] == str(first.id)
    audit = AuditLog.objects.get(action="gone_url.mark")
    assert audit.actor_type == "system" and audit.after["url"] == URL


def test_a_gone_notification_url_is_not_notified(tenant):
    tenant.notification_url = NOTIFY_URL
    tenant.save(update_fields=["notification_url"])

    gone_url_mark(tenant_id=tenant.id, url=NOTIFY_URL, task_id=make_task(tenant=tenant, url=NOTIFY_URL).id)

    assert GoneUrl.objects.filter(url=NOTIFY_URL).exists() and events() == []


def test_marked_again_after_clearing_tells_the_tenant_again(tenant):
    tenant.notification_url = NOTIFY_URL
    tenant.save(update_fields=["notification_url"])
    gone = gone_url_mark(tenant_id=tenant.id, url=URL, task_id=make_task(tenant=tenant, url=URL).id)

    gone_url_clear(gone=gone, actor_type="tenant", actor="key tc_abc")
    gone_url_mark(tenant_id=tenant.id, url=URL, task_id=make_task(tenant=tenant, url=URL).id)

    assert len(events()) == 2
    cleared = AuditLog.objects.get(action="gone_url.clear")
    assert cleared.actor_type == "tenant" and cleared.before["url"] == URL and cleared.after is None


def test_the_gone_command_lists_and_clears(tenant, other_api):
    gone_url_mark(tenant_id=tenant.id, url=URL, task_id=make_task(tenant=tenant, url=URL).id)
    gone_url_mark(
        tenant_id=other_api.tenant.id, url=URL, task_id=make_task(tenant=other_api.tenant, url=URL).id
    )
    out = io.StringIO()

    call_command("gone", "list", "--tenant", tenant.name, stdout=out)
    assert URL in out.getvalue() and other_api.tenant.name not in out.getvalue()
    call_command("gone", "clear", tenant.name, URL, stdout=io.StringIO())

    assert list(GoneUrl.objects.values_list("tenant__name", flat=True)) == [other_api.tenant.name]
    assert AuditLog.objects.get(action="gone_url.clear").actor == "manage.py"
    with pytest.raises(CommandError, match="not marked gone"):
        call_command("gone", "clear", tenant.name, URL)
