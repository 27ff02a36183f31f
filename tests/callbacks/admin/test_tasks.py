"""The tasks list, its filters, search and cheap paging; the detail page; retry, cancel and replay actions."""

import logging
import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from callbacks.admin.common import CappedPaginator
from callbacks.models import AuditLog, CallbackTask, TaskEvent, TaskExecution, TaskStatus, UrlWhitelistEntry
from callbacks.services.tenants import tenant_create, tenant_deactivate
from tests.factories import make_execution, make_task

pytestmark = pytest.mark.django_db
LIST = reverse("admin:callbacks_callbacktask_changelist")


def ids_on_page(response) -> set[str]:
    return {str(task.pk) for task in response.context["cl"].result_list}


def test_list_shows_the_columns_operators_need(admin_client, tenant):
    task = make_task(
        tenant=tenant,
        url="https://hooks.example.com/a",
        status=TaskStatus.DEAD,
        attempts=4,
        last_outcome="http_5xx",
        last_status_code=503,
        queue="billing",
        priority=7,
    )

    response = admin_client.get(LIST)

    assert response.status_code == 200
    html = response.content.decode()
    for text in (
        str(task.pk)[:8],
        "dead",
        "acme",
        "https://hooks.example.com:443",
        "billing",
        "http_5xx",
        "503",
    ):
        assert text in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=dead", {"dead"}),
        ("queue=billing", {"billing"}),
        ("origin=https://b.example.com:443", {"b-host"}),
        ("created=1h", {"recent"}),
    ],
)
def test_filters(admin_client, tenant, query, expected):
    old = timezone.now() - timedelta(days=2)
    make_task(
        tenant=tenant,
        url="https://a.example.com/",
        business_id="dead",
        status=TaskStatus.DEAD,
        created_at=old,
    )
    make_task(
        tenant=tenant, url="https://a.example.com/", business_id="billing", queue="billing", created_at=old
    )
    make_task(tenant=tenant, url="https://b.example.com/", business_id="b-host", created_at=old)
    make_task(tenant=tenant, url="https://a.example.com/", business_id="recent")

    response = admin_client.get(f"{LIST}?{query}")

    assert {task.business_id for task in response.context["cl"].result_list} == expected


def test_tenant_filter_and_its_choices(admin_client, tenant):
    other = tenant_create(name="globex").tenant
    mine = make_task(tenant=tenant, url="https://a.example.com/")
    make_task(tenant=other, url="https://a.example.com/")

    response = admin_client.get(f"{LIST}?tenant={tenant.pk}")

    assert ids_on_page(response) == {str(mine.pk)}
    assert "globex" in response.content.decode()  # offered as a choice


def test_filter_choices_list_queues_and_hosts(admin_client, tenant):
    make_task(tenant=tenant, url="https://a.example.com/", queue="reports")

    html = admin_client.get(LIST).content.decode()

    assert "?queue=reports" in html
    assert "origin=https%3A%2F%2Fa.example.com%3A443" in html


@pytest.mark.parametrize("field", ["pk", "business_id", "trace_id"])
def test_search_by_exact_id_business_id_or_trace_id(admin_client, tenant, field):
    wanted = make_task(tenant=tenant, url="https://a.example.com/", business_id="order-17", trace_id="tr-99")
    make_task(tenant=tenant, url="https://a.example.com/", business_id="order-170", trace_id="tr-990")
    term = {"pk": str(wanted.pk), "business_id": "order-17", "trace_id": "tr-99"}[field]

    response = admin_client.get(LIST, {"q": term})

    assert ids_on_page(response) == {str(wanted.pk)}


def test_search_for_a_uuid_in_upper_case_without_dashes_finds_the_task(admin_client, tenant):
    wanted = make_task(tenant=tenant, url="https://a.example.com/")

    response = admin_client.get(LIST, {"q": wanted.pk.hex.upper()})

    assert ids_on_page(response) == {str(wanted.pk)}


def test_no_full_count_of_the_table(admin_client, tenant):
    make_task(tenant=tenant, url="https://a.example.com/", status=TaskStatus.DEAD)

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(f"{LIST}?status=dead")

    assert response.status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts, "the paginator counts (capped)"
    assert all("LIMIT" in sql.upper() for sql in counts if "callbacks_callbacktask" in sql), counts


def test_capped_paginator_counts_no_further_than_its_cap(tenant, monkeypatch):
    monkeypatch.setattr(CappedPaginator, "CAP", 3)
    for _ in range(5):
        make_task(tenant=tenant, url="https://a.example.com/")

    paginator = CappedPaginator(CallbackTask.objects.order_by("pk"), 2)

    assert paginator.count == 3
    assert paginator.num_pages == 2


def test_detail_page_masks_headers_decodes_body_and_shows_attempts_and_history(admin_client, tenant):
    task = make_task(
        tenant=tenant,
        url="https://a.example.com/",
        headers={"Authorization": "Bearer sekrit-token", "X-Plain": "visible"},
        payload='{"order":17,"items":[1,2]}',
        status=TaskStatus.DEAD,
    )
    TaskExecution.objects.create(
        task=task,
        tenant=tenant,
        attempt=1,
        started_at=timezone.now(),
        duration_ms=12.5,
        outcome="http_5xx",
        status_code=503,
        error="HTTP 503",
        request_method="POST",
        request_url=task.url,
        request_headers={"X-Api-Key": "abc123", "X-Plain": "visible"},
        response_headers={"Set-Cookie": "session=zzz", "Retry-After": "5"},
        response_body="upstream down " * 400,
    )
    TaskEvent.objects.create(task=task, from_status="running", to_status="dead", note="retries exhausted")

    response = admin_client.get(reverse("admin:callbacks_callbacktask_change", args=[task.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "sekrit-token" not in html and "abc123" not in html and "session=zzz" not in html
    assert "visible" in html and "Retry-After" in html
    assert "&quot;order&quot;: 17" in html  # pretty-printed JSON body
    assert "HTTP 503" in html and "retries exhausted" in html
    assert "more characters" in html  # the long response body is cut for display
    assert 'name="_save"' not in html  # read-only: tasks change through actions only


def _act(client, action, tasks, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(t.pk) for t in tasks], "index": 0, **extra}
    return client.post(LIST, data, follow=True)


def test_retry_now_requeues_and_reports_refusals(admin_client, tenant):
    dead = make_task(
        tenant=tenant, url="https://a.example.com/", status=TaskStatus.DEAD, attempts=4, next_attempt_at=None
    )
    done = make_task(tenant=tenant, url="https://a.example.com/", status=TaskStatus.SUCCEEDED)

    response = _act(admin_client, "retry_now", [dead, done])

    texts = [str(m) for m in response.context["messages"]]
    assert "Retried: 1." in texts
    assert any(t.startswith("Refused 1:") and str(done.pk) in t and "succeeded" in t for t in texts)
    dead.refresh_from_db()
    assert dead.status == TaskStatus.SCHEDULED and dead.max_retries == 4
    assert AuditLog.objects.get(action="task.retry").actor == "admin"


def test_cancel(admin_client, tenant):
    waiting = make_task(tenant=tenant, url="https://a.example.com/")

    response = _act(admin_client, "cancel", [waiting])

    assert "Cancelled: 1." in [str(m) for m in response.context["messages"]]
    waiting.refresh_from_db()
    assert waiting.status == TaskStatus.CANCELLED


def test_replay_dead_asks_first_then_replays_only_dead_ones(admin_client, tenant):
    dead = make_task(tenant=tenant, url="https://a.example.com/", status=TaskStatus.DEAD, attempts=4)
    failed = make_task(tenant=tenant, url="https://a.example.com/", status=TaskStatus.FAILED)

    confirm = _act(admin_client, "replay_dead", [dead, failed])

    assert confirm.templates[0].name == "admin/callbacks/callbacktask/replay_dead_confirmation.html"
    html = confirm.content.decode()
    assert str(dead.pk) in html and "1 of the 2 selected tasks is not dead" in html
    dead.refresh_from_db()
    assert dead.status == TaskStatus.DEAD  # nothing yet

    done = _act(admin_client, "replay_dead", [dead, failed], confirm="yes")

    assert "Replayed 1 dead letter(s)." in [str(m) for m in done.context["messages"]]
    dead.refresh_from_db()
    failed.refresh_from_db()
    assert dead.status == TaskStatus.SCHEDULED and failed.status == TaskStatus.FAILED
    assert AuditLog.objects.filter(action="task.replay_dead", actor="admin").count() == 1


def test_replay_dead_across_a_filtered_selection(admin_client, tenant):
    deads = [make_task(tenant=tenant, url="https://a.example.com/", status=TaskStatus.DEAD) for _ in range(3)]

    response = admin_client.post(
        f"{LIST}?status=dead",
        {
            "action": "replay_dead",
            ACTION_CHECKBOX_NAME: [str(deads[0].pk)],
            "select_across": "1",
            "index": 0,
            "confirm": "yes",
        },
        follow=True,
    )

    assert "Replayed 3 dead letter(s)." in [str(m) for m in response.context["messages"]]


def test_replay_dead_page_counts_then_replays_a_tenants_dead_letters(admin_client, tenant):
    other = tenant_create(name="globex").tenant
    mine = make_task(
        tenant=tenant, url="https://a.example.com/", status=TaskStatus.DEAD, finished_at=timezone.now()
    )
    theirs = make_task(
        tenant=other, url="https://a.example.com/", status=TaskStatus.DEAD, finished_at=timezone.now()
    )
    page = reverse("admin:callbacks_callbacktask_replay_dead")

    counted = admin_client.get(page, {"tenant": tenant.pk})
    assert counted.context["count"] == 1

    admin_client.post(page, {"tenant": tenant.pk, "since": "", "confirm": "yes"})

    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == (TaskStatus.SCHEDULED, TaskStatus.DEAD)


def test_replay_dead_page_refuses_a_future_since(admin_client):
    response = admin_client.get(
        reverse("admin:callbacks_callbacktask_replay_dead"), {"since": "2999-01-01 00:00"}
    )

    assert "in the future" in response.content.decode()
    assert response.context.get("count") is None


def test_executions_are_read_only_and_filter_by_outcome(admin_client, tenant):
    task = make_task(tenant=tenant, url="https://a.example.com/")
    for attempt, outcome in enumerate(["timeout", "success"], start=1):
        TaskExecution.objects.create(
            task=task,
            tenant=tenant,
            attempt=attempt,
            started_at=timezone.now(),
            outcome=outcome,
            request_method="POST",
            request_url=task.url,
        )
    url = reverse("admin:callbacks_taskexecution_changelist")

    response = admin_client.get(url, {"outcome": "timeout"})

    assert [e.outcome for e in response.context["cl"].result_list] == ["timeout"]
    assert admin_client.get(reverse("admin:callbacks_taskexecution_add")).status_code == 403
    execution = TaskExecution.objects.first()
    detail = admin_client.get(reverse("admin:callbacks_taskexecution_change", args=[execution.pk]))
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    assert (
        admin_client.post(
            reverse("admin:callbacks_taskexecution_delete", args=[execution.pk]), {"post": "yes"}
        ).status_code
        == 403
    )


def test_a_tasks_page_shows_the_trace_context_its_attempts_continue(admin_client, tenant):
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    task = make_task(
        tenant=tenant,
        url="https://example.com/hook",
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        traceparent=parent,
    )

    html = admin_client.get(reverse("admin:callbacks_callbacktask_change", args=[task.pk])).content.decode()

    assert "Traceparent" in html and parent in html


def test_executions_show_the_protocol_of_each_attempt(admin_client, tenant):
    task = make_task(tenant=tenant, url="https://a.example.com/")
    execution = make_execution(task=task, attempt=1, http_version="2")
    listing = admin_client.get(reverse("admin:callbacks_taskexecution_changelist"))
    assert "column-http_version" in listing.content.decode()
    detail = admin_client.get(reverse("admin:callbacks_taskexecution_change", args=[execution.pk]))
    assert re.search(r'field-http_version.*?<div class="readonly">2</div>', detail.content.decode(), re.S)
    task_page = admin_client.get(
        reverse("admin:callbacks_callbacktask_change", args=[task.pk])
    ).content.decode()
    assert "field-http_version" in task_page


# --- the API's values, not the choices' labels -----------------------------------------------------


def test_list_and_filters_show_the_apis_values_not_title_cased_labels(admin_client, tenant):
    make_task(
        tenant=tenant,
        url="https://a.example.com/",
        method="PATCH",
        status=TaskStatus.RETRYING,
        last_outcome="http_5xx",
        last_status_code=503,
    )

    html = admin_client.get(LIST).content.decode()

    assert '<td class="field-method_value">PATCH</td>' in html
    assert "http_5xx 503" in html and 'href="?status=retrying"' in html
    for label in (">Patch<", ">Retrying<", "Http 5Xx", ">Dead<", ">Scheduled<"):
        assert label not in html, label
    assert 'class="tc-legend"' in html  # the status legend above the list


def test_a_tasks_page_and_its_attempts_show_values_badges_and_milliseconds(admin_client, tenant):
    task = make_task(
        tenant=tenant,
        url="https://a.example.com/",
        body_format="json",
        status=TaskStatus.DEAD,
        last_outcome="http_5xx",
        last_status_code=503,
    )
    execution = make_execution(task=task, attempt=1, started_at=timezone.now().replace(microsecond=250_000))
    TaskEvent.objects.create(task=task, from_status="running", to_status="dead", note="retries exhausted")

    html = admin_client.get(reverse("admin:callbacks_callbacktask_change", args=[task.pk])).content.decode()

    assert re.search(r'field-method_value.*?<div class="readonly">POST</div>', html, re.S)
    assert re.search(r'field-body_format_value.*?<div class="readonly">json</div>', html, re.S)
    assert re.search(r'<td class="field-started">\s*<p>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.250 UTC</p>', html)
    assert re.search(
        r'<td class="field-outcome_value">\s*<p><span class="tc-badge[^>]*>http_5xx 503</span>', html
    )
    assert ">Json<" not in html and ">Post<" not in html and "Http 5Xx" not in html

    listing = admin_client.get(reverse("admin:callbacks_taskexecution_changelist")).content.decode()
    assert 'href="?outcome=http_5xx"' in listing and "Http 5Xx" not in listing
    assert re.search(r"\d\d:\d\d:\d\d\.250 UTC", listing)
    detail = admin_client.get(reverse("admin:callbacks_taskexecution_change", args=[execution.pk]))
    assert re.search(r"field-outcome_value.*?>http_5xx 503</span>", detail.content.decode(), re.S)


# --- the buttons on a task's page ------------------------------------------------------------------


def task_url(task, action="change"):
    return reverse(f"admin:callbacks_callbacktask_{action}", args=[task.pk])


@pytest.mark.parametrize(
    ("status", "buttons"),
    [
        (TaskStatus.SCHEDULED, {"cancel"}),
        (TaskStatus.QUEUED, {"cancel"}),
        (TaskStatus.RUNNING, {"cancel"}),
        (TaskStatus.RETRYING, {"retry", "cancel"}),
        (TaskStatus.FAILED, {"retry"}),
        (TaskStatus.DEAD, {"retry", "replay"}),
        (TaskStatus.SUCCEEDED, set()),
        (TaskStatus.CANCELLED, set()),
    ],
)
def test_a_tasks_page_shows_the_buttons_its_status_allows(admin_client, tenant, status, buttons):
    task = make_task(tenant=tenant, url="https://a.example.com/", status=status)

    html = admin_client.get(task_url(task)).content.decode()

    assert set(re.findall(r'id="tc-(retry|cancel|replay)"', html)) == buttons


@pytest.fixture
def viewer(client, django_user_model):
    """Staff who may look at tasks, not act on them."""
    user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_callbacktask", "view_tenant"]))
    client.force_login(user)
    return client


def test_staff_without_change_permission_see_no_buttons_and_are_refused(viewer, tenant):
    task = make_task(tenant=tenant, url="https://a.example.com/", status=TaskStatus.DEAD, attempts=4)

    page = viewer.get(task_url(task))

    assert page.status_code == 200
    assert "tc-task-action" not in page.content.decode()
    assert viewer.post(task_url(task, "retry")).status_code == 403
    assert viewer.get(task_url(task, "cancel")).status_code == 403
    assert viewer.post(task_url(task, "cancel"), {"confirm": "yes"}).status_code == 403
    assert viewer.post(task_url(task, "replay"), {"confirm": "yes"}).status_code == 403
    task.refresh_from_db()
    assert task.status == TaskStatus.DEAD
    assert not AuditLog.objects.exists()


def test_staff_with_change_permission_may_act(viewer, tenant, django_user_model):
    user = django_user_model.objects.get(username="viewer")
    user.user_permissions.add(Permission.objects.get(codename="change_callbacktask"))
    task = make_task(tenant=tenant, url="https://a.example.com/", status=TaskStatus.DEAD, attempts=4)

    assert 'id="tc-retry"' in viewer.get(task_url(task)).content.decode()
    response = viewer.post(task_url(task, "retry"))

    assert response.status_code == 302 and response["Location"] == task_url(task)
    task.refresh_from_db()
    assert task.status == TaskStatus.SCHEDULED
    assert AuditLog.objects.get(action="task.retry").actor == "viewer"


def test_retry_acts_only_on_post(admin_client, tenant):
    task = make_task(tenant=tenant, url="https://a.example.com/", status=TaskStatus.DEAD)

    assert admin_client.get(task_url(task, "retry")).status_code == 405
    task.refresh_from_db()
    assert task.status == TaskStatus.DEAD


def test_retry_reports_the_services_refusal_on_the_task_page(admin_client, tenant):
    task = make_task(tenant=tenant, url="https://a.example.com/", status=TaskStatus.SUCCEEDED)

    response = admin_client.post(task_url(task, "retry"), follow=True)

    assert response.redirect_chain == [(task_url(task), 302)]
    assert [str(m) for m in response.context["messages"]] == [
        "Refused: The task is succeeded; only failed, dead or retrying tasks can be retried."
    ]


def test_cancel_asks_first_and_cancels_on_yes(admin_client, tenant):
    task = make_task(tenant=tenant, url="https://a.example.com/")

    asked = admin_client.get(task_url(task, "cancel"))
    not_confirmed = admin_client.post(task_url(task, "cancel"))

    assert asked.templates[0].name == "admin/callbacks/callbacktask/action_confirmation.html"
    assert "Cancel this callback?" in asked.content.decode()
    assert not_confirmed.status_code == 200  # the question again, nothing done
    task.refresh_from_db()
    assert task.status == TaskStatus.SCHEDULED

    done = admin_client.post(task_url(task, "cancel"), {"confirm": "yes"}, follow=True)

    assert "Cancelled: the task will not be sent again." in [str(m) for m in done.context["messages"]]
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    assert AuditLog.objects.get(action="task.cancel").actor == "admin"


def test_replay_of_a_task_that_is_no_longer_dead_is_refused(admin_client, tenant):
    task = make_task(tenant=tenant, url="https://a.example.com/", status=TaskStatus.SUCCEEDED)

    response = admin_client.post(task_url(task, "replay"), {"confirm": "yes"}, follow=True)

    assert [str(m) for m in response.context["messages"]] == [
        "Refused: The task is succeeded; only dead tasks can be replayed."
    ]
    assert not AuditLog.objects.exists()


def test_an_action_on_a_task_that_does_not_exist_leads_back_to_the_index(admin_client):
    response = admin_client.post(reverse("admin:callbacks_callbacktask_retry", args=[uuid.uuid4()]))

    assert response.status_code == 302 and response["Location"] == reverse("admin:index")


# --- the add page and the test callback -------------------------------------------------------------

SEND_TEST = reverse("admin:callbacks_callbacktask_send_test")


def test_the_add_page_leads_to_the_test_callback_page_without_logging_an_error(admin_client, caplog):
    with caplog.at_level(logging.WARNING):
        response = admin_client.get(reverse("admin:callbacks_callbacktask_add"))

    assert response.status_code == 302 and response["Location"] == SEND_TEST
    assert caplog.records == []
    assert admin_client.get(SEND_TEST).status_code == 200


def test_the_test_callback_page_needs_the_add_permission(viewer, tenant):
    assert viewer.get(SEND_TEST).status_code == 403
    assert viewer.post(SEND_TEST, {"tenant": tenant.pk, "url": "https://a.example.com/"}).status_code == 403
    assert "tc-send-test-link" not in viewer.get(LIST).content.decode()
    tenant_page = viewer.get(reverse("admin:callbacks_tenant_change", args=[tenant.pk]))
    assert tenant_page.status_code == 200 and "tc-send-test-link" not in tenant_page.content.decode()
    assert not CallbackTask.objects.exists()


def test_the_tenant_and_task_lists_link_the_test_callback_page(admin_client, tenant):
    tenant_page = admin_client.get(
        reverse("admin:callbacks_tenant_change", args=[tenant.pk])
    ).content.decode()

    assert f'href="{SEND_TEST}?tenant={tenant.pk}"' in tenant_page
    assert f'href="{SEND_TEST}"' in admin_client.get(LIST).content.decode()
    preselected = admin_client.get(SEND_TEST, {"tenant": tenant.pk})
    assert preselected.context["form"]["tenant"].value() == str(tenant.pk)


def _send(client, owner, **fields):
    data = {
        "tenant": owner.pk,
        "url": "https://a.example.com/",
        "method": "POST",
        "body_format": "json",
        "body": "",
    }
    return client.post(SEND_TEST, {**data, **fields})


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"body": "{not json"}, "body", "not valid JSON"),
        ({"body_format": "form", "body": "[1, 2]"}, "body", "a form body must be an object"),
        ({"body_format": "xml", "body": "<a><b></a>"}, "body", "not well-formed XML"),
        ({"url": "ftp://a.example.com/"}, "url", "only http and https"),
        ({"url": "https://user:pw@a.example.com/"}, "url", "credentials"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "url", "169.254.169.254"),
        ({"url": "http://localhost:8080/"}, "url", "loopback name"),
        ({"method": "TRACE"}, "method", "Select a valid choice"),
        ({"tenant": str(uuid.uuid4())}, "tenant", "Select a valid choice"),
    ],
)
def test_invalid_test_callbacks_name_the_field_and_the_reason_and_store_nothing(
    admin_client, tenant, settings, fields, field, reason
):
    # The SSRF guard as in production: nothing non-public is exempt, loopback included.
    settings.CALLBACKS = {**settings.CALLBACKS, "ALLOWED_NETWORKS": [], "ALLOW_PRIVATE_NETWORKS": False}

    response = _send(admin_client, tenant, **fields)

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert reason.lower() in " ".join(errors[field]).lower(), errors
    assert not CallbackTask.objects.exists() and not AuditLog.objects.exists()


def test_a_url_off_the_tenants_whitelist_is_refused_and_stores_nothing(admin_client, tenant):
    tenant.enforce_whitelist = True
    tenant.save()
    UrlWhitelistEntry.objects.create(tenant=tenant, host="allowed.example.com")

    response = _send(admin_client, tenant, url="https://other.example.com/hook")

    assert "whitelist" in " ".join(response.context["form"].errors["url"])
    assert not CallbackTask.objects.exists()


def test_a_test_callback_is_created_by_the_service_sent_at_once_and_shown(admin_client, tenant, receiver):
    response = _send(admin_client, tenant, url=receiver.url + "/t", method="PUT", body='{"a": [1, 2]}')

    task = CallbackTask.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{SEND_TEST}?sent={task.pk}"
    [received] = receiver.received
    assert (received.method, received.path, received.body) == ("PUT", "/t", b'{"a":[1,2]}')
    assert task.status == TaskStatus.SUCCEEDED and task.attempts == 1
    assert AuditLog.objects.get(action="task.create").actor == "admin"

    shown = admin_client.get(response["Location"])

    html = shown.content.decode()
    assert shown.context["execution"].status_code == 200
    assert ">success 200</span>" in html and task_url(task) in html
    assert shown.context["form"]["url"].value() == receiver.url + "/t"  # ready to send again


@pytest.mark.django_db(transaction=True)  # the sender thread reads the whitelist from a connection of its own
def test_a_test_callback_to_a_whitelisted_url_is_sent(admin_client, tenant, receiver):
    tenant.enforce_whitelist = True
    tenant.save()
    UrlWhitelistEntry.objects.create(
        tenant=tenant, host="127.0.0.1", port=receiver.port, path_prefix="/allowed"
    )

    _send(admin_client, tenant, url=receiver.url + "/allowed/hook")

    assert CallbackTask.objects.get().status == TaskStatus.SUCCEEDED
    assert [r.path for r in receiver.received] == ["/allowed/hook"]


def test_a_deactivated_tenant_is_not_offered(admin_client, tenant):
    tenant_deactivate(tenant=tenant, actor_type="user", actor="admin")

    response = _send(admin_client, tenant, url="https://a.example.com/")

    assert "Select a valid choice" in " ".join(response.context["form"].errors["tenant"])
    assert not CallbackTask.objects.exists()
