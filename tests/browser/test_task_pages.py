"""The callback task pages in a real browser at 1440 px: the list and its legend, a task's page with its
timeline, the retry / cancel / replay buttons, and sending a test callback to a real receiver.
Screenshots go to tests/artifacts/."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from callbacks.models import CallbackTask, Lane, TaskStatus, UrlWhitelistEntry
from callbacks.services.tenants import tenant_create
from tests.browser.conftest import PASSWORD
from tests.browser.helpers import screenshot
from tests.factories import make_execution, make_task
from tests.receivers import Receiver, Reply

pytestmark = pytest.mark.browser
LIST = "/admin/callbacks/callbacktask/"
SEND_TEST = LIST + "send-test/"
MILLISECONDS = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC")


def task_page(task) -> str:
    return f"{LIST}{task.pk}/change/"


def assert_fits(page, selector: str) -> None:
    """Nothing wider than the window: no sideways scrolling of the page or of the element."""
    widths = page.evaluate(
        """(selector) => {
            const el = document.querySelector(selector);
            return [document.documentElement.scrollWidth, window.innerWidth, el.scrollWidth, el.clientWidth];
        }""",
        selector,
    )
    page_width, window_width, element_scroll, element_width = widths
    assert page_width <= window_width, widths
    assert element_scroll <= element_width, widths


def test_the_list_fits_1440_px_with_the_legend_above_it(operator, tenant):
    other = tenant_create(name="northwind-logistics-eu").tenant
    now = timezone.now()
    rows = [
        (TaskStatus.SCHEDULED, "", None, "POST"),
        (TaskStatus.RETRYING, "http_5xx", 503, "PUT"),
        (TaskStatus.DEAD, "timeout", None, "POST"),
        (TaskStatus.FAILED, "http_4xx", 404, "PATCH"),
        (TaskStatus.SUCCEEDED, "success", 200, "DELETE"),
        (TaskStatus.CANCELLED, "", None, "GET"),
        (TaskStatus.RUNNING, "connection", None, "POST"),
        (TaskStatus.QUEUED, "whitelist_denied", None, "POST"),
    ]
    for index, (status, outcome, code, method) in enumerate(rows):
        make_task(
            tenant=other if index % 2 else tenant,
            url=f"https://webhooks.receiver-{index}.customer-systems.example.com:8443/v2/hooks/orders",
            status=status,
            method=method,
            attempts=index,
            last_outcome=outcome,
            last_status_code=code,
            queue="billing-reports" if index % 3 else "default",
            next_attempt_at=now + timedelta(minutes=index) if status == TaskStatus.RETRYING else None,
            created_at=now - timedelta(seconds=index),
        )

    operator.goto(LIST)

    legend = operator.locator(".tc-legend")
    expect(legend).to_be_visible()
    assert legend.locator("dt").count() == len(TaskStatus.values)
    assert legend.bounding_box()["y"] < operator.locator("#result_list").bounding_box()["y"]
    expect(operator.locator("#result_list tbody tr")).to_have_count(len(rows))
    screenshot(operator, "task-list")
    assert_fits(operator, "#changelist .results")
    table = operator.locator("#result_list").bounding_box()
    assert table["x"] + table["width"] <= operator.locator("#changelist-filter").bounding_box()["x"]
    headers = operator.locator("#result_list thead th").all_inner_texts()
    assert [h.strip().lower() for h in headers[1:]] == [
        "id",
        "status",
        "tenant",
        "method",
        "origin",
        "queue",
        "attempts",
        "last outcome",
        "next attempt at",
        "created at",
    ]
    # The API's values, never the choices' title-cased labels.
    methods = set(operator.locator("td.field-method_value").all_inner_texts())
    assert methods == {"POST", "PUT", "PATCH", "DELETE", "GET"}
    outcomes = operator.locator("td.field-outcome_value .tc-badge").all_inner_texts()
    assert "http_5xx 503" in outcomes and "whitelist_denied" in outcomes
    filters = operator.locator("#changelist-filter").inner_text()
    assert "dead" in filters and "Dead" not in filters


def test_a_tasks_page_shows_values_badges_and_attempt_times_to_the_millisecond(operator, tenant):
    started = timezone.now() - timedelta(minutes=3)
    task = make_task(
        tenant=tenant,
        url="https://hooks.example.com/orders",
        method="PUT",
        status=TaskStatus.RETRYING,
        attempts=2,
        last_outcome="http_5xx",
        last_status_code=503,
        next_attempt_at=timezone.now() + timedelta(minutes=2),
        headers={"Authorization": "Bearer sekrit", "X-Order": "17"},
    )
    make_execution(
        task=task, attempt=1, outcome="timeout", status_code=None, started_at=started, error="timed out"
    )
    make_execution(task=task, attempt=2, started_at=started + timedelta(seconds=30, milliseconds=250))

    operator.goto(task_page(task))

    expect(operator.locator(".field-method_value .readonly")).to_have_text("PUT")
    expect(operator.locator(".field-body_format_value .readonly")).to_have_text("json")
    expect(operator.locator(".field-last_outcome_value .tc-badge")).to_have_text("http_5xx 503")
    expect(operator.locator("#tc-timeline .tc-attempt[data-attempt]")).to_have_count(2)
    attempts = operator.locator("#executions-group td.field-outcome_value")
    expect(attempts).to_have_text(["timeout", "http_5xx 503"])
    times = operator.locator("#executions-group td.field-started").all_inner_texts()
    assert len(times) == 2 and all(MILLISECONDS.fullmatch(t.strip()) for t in times), times
    history = operator.locator("#events-group").inner_text()
    assert "Sekrit" not in history
    assert "sekrit" not in operator.content()
    assert_fits(operator, "#content")
    # A retrying task can be retried now or cancelled; it is not dead, so not replayed.
    expect(operator.locator("#tc-retry")).to_be_visible()
    expect(operator.locator("#tc-cancel")).to_be_visible()
    expect(operator.locator("#tc-replay")).to_have_count(0)
    screenshot(operator, "task-page-timeline")


def test_retry_acts_at_once_and_a_refusal_shows_on_the_task_page(operator, tenant):
    task = make_task(
        tenant=tenant,
        url="https://hooks.example.com/",
        status=TaskStatus.DEAD,
        attempts=4,
        last_outcome="http_5xx",
        last_status_code=503,
        next_attempt_at=None,
        finished_at=timezone.now(),
    )
    operator.goto(task_page(task))
    expect(operator.locator("#tc-replay")).to_be_visible()

    operator.click("#tc-retry")

    expect(operator.locator("ul.messagelist li.success")).to_contain_text("Retried")
    expect(operator.locator(".field-status_value .readonly")).to_have_text("scheduled")
    assert CallbackTask.objects.get(pk=task.pk).status == TaskStatus.SCHEDULED
    expect(operator.locator("#tc-retry")).to_have_count(0)  # scheduled: nothing to retry
    expect(operator.locator("#tc-cancel")).to_be_visible()

    # The page is stale: the task failed meanwhile; then it succeeded before the button was pressed.
    CallbackTask.objects.filter(pk=task.pk).update(status=TaskStatus.FAILED)
    operator.reload()
    CallbackTask.objects.filter(pk=task.pk).update(status=TaskStatus.SUCCEEDED)
    operator.click("#tc-retry")

    refusal = operator.locator("ul.messagelist li.error")
    expect(refusal).to_contain_text("Refused: The task is succeeded; only failed, dead or retrying")
    expect(operator.locator(".field-status_value .readonly")).to_have_text("succeeded")
    screenshot(operator, "task-retry-refused")


def test_cancel_asks_on_a_page_first_then_cancels(operator, tenant):
    task = make_task(tenant=tenant, url="https://hooks.example.com/", status=TaskStatus.RETRYING, attempts=1)
    operator.goto(task_page(task))

    operator.click("#tc-cancel")

    expect(operator.locator("#tc-question")).to_contain_text("Cancel this callback?")
    expect(operator.locator("#tc-task-summary")).to_contain_text(str(task.pk))
    assert CallbackTask.objects.get(pk=task.pk).status == TaskStatus.RETRYING  # nothing yet
    screenshot(operator, "task-cancel-confirm")

    operator.click("input[type=submit][value='Yes, cancel']")

    operator.wait_for_url(f"**{task_page(task)}")
    expect(operator.locator("ul.messagelist li.success")).to_contain_text("Cancelled")
    expect(operator.locator(".field-status_value .readonly")).to_have_text("cancelled")
    assert CallbackTask.objects.get(pk=task.pk).status == TaskStatus.CANCELLED
    expect(operator.locator("#tc-cancel")).to_have_count(0)

    # "No, take me back" changes nothing.
    other = make_task(tenant=tenant, url="https://hooks.example.com/")
    operator.goto(task_page(other))
    operator.click("#tc-cancel")
    # The question page loaded, its styles too: a click while they still move the link can miss it.
    operator.wait_for_url(f"**{LIST}{other.pk}/cancel/")
    operator.click("text=No, take me back")
    operator.wait_for_url(f"**{task_page(other)}")
    assert CallbackTask.objects.get(pk=other.pk).status == TaskStatus.SCHEDULED


def test_replay_asks_first_then_replays_the_dead_letter(operator, tenant):
    task = make_task(
        tenant=tenant,
        url="https://hooks.example.com/",
        status=TaskStatus.DEAD,
        attempts=4,
        max_retries=3,
        last_outcome="timeout",
        next_attempt_at=None,
        finished_at=timezone.now(),
    )
    operator.goto(task_page(task))

    operator.click("#tc-replay")

    expect(operator.locator("#tc-question")).to_contain_text("Send this dead letter again now?")
    screenshot(operator, "task-replay-confirm")
    operator.click("input[type=submit][value='Yes, replay']")

    expect(operator.locator("ul.messagelist li.success")).to_contain_text("Replayed")
    task.refresh_from_db()
    assert (task.status, task.max_retries) == (TaskStatus.SCHEDULED, 4)
    expect(operator.locator("#events-group")).to_contain_text("replayed by operator")

    # Asked again from a stale page: the service finds nothing dead and the page says so.
    operator.goto(f"{LIST}{task.pk}/replay/")
    expect(operator.locator("#tc-question")).to_contain_text("The task is scheduled now")


def test_send_a_test_callback_from_the_tenants_page_to_a_real_receiver(operator, tenant, receiver):
    operator.goto(f"/admin/callbacks/tenant/{tenant.pk}/change/")
    operator.click("#tc-send-test-link")
    operator.wait_for_url(f"**{SEND_TEST}?tenant={tenant.pk}")
    assert operator.locator("#id_tenant").input_value() == str(tenant.pk)

    operator.fill("#id_url", receiver.url + "/hooks/test")
    operator.select_option("#id_method", "PUT")
    operator.fill("#id_body", '{"order": 17, "note": "from the console"}')
    screenshot(operator, "send-test-callback-form")
    operator.click("#tc-send-test-form input[type=submit]")

    expect(operator.locator("#tc-sent-outcome .tc-badge")).to_have_text("success 200")
    [received] = receiver.received
    assert (received.method, received.path) == ("PUT", "/hooks/test")
    assert json.loads(received.body) == {"order": 17, "note": "from the console"}
    assert received.headers["webhook-signature"].startswith("v1,")
    task = CallbackTask.objects.get()
    assert received.headers["x-callback-task-id"] == str(task.pk)
    assert (task.status, task.attempts, task.tenant_id) == (TaskStatus.SUCCEEDED, 1, tenant.pk)
    assert not Lane.objects.exists()  # the attempt's slot is given back
    expect(operator.locator("#tc-sent-status")).to_have_text("200")
    expect(operator.locator("#tc-sent-duration")).to_contain_text(" ms")
    expect(operator.locator("#tc-sent-task-status")).to_have_text("succeeded")
    expect(operator.locator("#tc-request-headers")).to_contain_text("webhook-signature")
    expect(operator.locator("#tc-response-body")).to_have_text("ok")
    # The form is filled in as sent, to send it again.
    assert operator.locator("#id_url").input_value() == receiver.url + "/hooks/test"
    assert operator.locator("#id_method").input_value() == "PUT"
    assert_fits(operator, "#content")
    screenshot(operator, "send-test-callback")

    operator.click("#tc-sent-task")
    operator.wait_for_url(f"**{task_page(task)}")
    expect(operator.locator("#executions-group td.field-outcome_value")).to_have_text(["success 200"])


def test_a_test_callback_that_fails_shows_the_masked_answer_and_is_retried_later(operator, tenant):
    reply = Reply(
        status=503,
        headers={"Set-Cookie": "session=topsecret", "Retry-After": "120", "X-Upstream": "down"},
        body=b"upstream unavailable",
    )
    with Receiver(reply) as failing:
        operator.goto(SEND_TEST)
        operator.select_option("#id_tenant", label=tenant.name)
        operator.fill("#id_url", failing.url + "/hook")
        operator.click("#tc-send-test-form input[type=submit]")

        expect(operator.locator("#tc-sent-outcome .tc-badge")).to_have_text("http_5xx 503")
    headers = operator.locator("#tc-response-headers").inner_text()
    assert "X-Upstream" in headers and "Retry-After" in headers
    assert "topsecret" not in operator.content()
    expect(operator.locator("#tc-response-body")).to_have_text("upstream unavailable")
    expect(operator.locator("#tc-sent-error")).to_have_text("HTTP 503")
    expect(operator.locator("#tc-sent-task-status")).to_have_text("retrying")
    task = CallbackTask.objects.get()
    assert task.status == TaskStatus.RETRYING and task.next_attempt_at > timezone.now()
    screenshot(operator, "send-test-callback-failed")


def test_a_refused_test_callback_names_the_field_and_stores_nothing(operator, tenant):
    operator.goto(SEND_TEST)
    operator.select_option("#id_tenant", label=tenant.name)
    operator.fill("#id_url", "http://10.0.0.7:8080/internal/hook")
    operator.select_option("#id_body_format", "json")
    operator.fill("#id_body", "{not json")
    operator.click("#tc-send-test-form input[type=submit]")

    expect(operator.locator(".errornote")).to_be_visible()
    expect(operator.locator(".field-body .errorlist")).to_contain_text("not valid JSON")
    operator.fill("#id_body", '{"ok": true}')
    operator.click("#tc-send-test-form input[type=submit]")

    expect(operator.locator(".field-url .errorlist")).to_contain_text("10.0.0.7 is a private address")
    screenshot(operator, "send-test-callback-refused")

    tenant.enforce_whitelist = True
    tenant.save()
    UrlWhitelistEntry.objects.create(tenant=tenant, host="allowed.example.com")
    operator.fill("#id_url", "https://elsewhere.example.com/hook")
    operator.click("#tc-send-test-form input[type=submit]")

    expect(operator.locator(".field-url .errorlist")).to_contain_text("whitelist")
    assert not CallbackTask.objects.exists()
    screenshot(operator, "send-test-callback-whitelist-denied")


def test_the_add_page_leads_to_the_test_callback_page(operator):
    operator.goto(LIST)
    expect(operator.locator(".object-tools a.addlink")).to_have_count(0)
    operator.click("#tc-send-test-link")
    operator.wait_for_url(f"**{SEND_TEST}")

    operator.goto(LIST + "add/")

    operator.wait_for_url(f"**{SEND_TEST}")
    expect(operator.locator("#tc-send-test-form")).to_be_visible()


def test_a_user_who_may_only_look_sees_no_buttons(page, tenant):
    from django.contrib.auth.models import Permission, User

    viewer = User.objects.create_user("viewer", password=PASSWORD, is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename="view_callbacktask"))
    task = make_task(tenant=tenant, url="https://hooks.example.com/", status=TaskStatus.DEAD)
    page.goto("/admin/login/")
    page.fill("#id_username", "viewer")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")

    page.goto(task_page(task))

    expect(page.locator(".field-status_value .readonly")).to_have_text("dead")
    expect(page.locator(".tc-task-action")).to_have_count(0)
    page.goto(LIST)
    expect(page.locator("#tc-send-test-link")).to_have_count(0)


def test_the_attempts_list_and_page_show_values_badges_and_milliseconds(operator, tenant):
    task = make_task(tenant=tenant, url="https://hooks.example.com/orders", status=TaskStatus.RETRYING)
    started = timezone.now() - timedelta(seconds=40)
    make_execution(
        task=task,
        attempt=1,
        outcome="connection",
        status_code=None,
        started_at=started,
        error="connection refused",
    )
    make_execution(task=task, attempt=2, started_at=started + timedelta(seconds=20), http_version="1.1")

    operator.goto("/admin/callbacks/taskexecution/")

    expect(operator.locator("td.field-outcome_value .tc-badge")).to_have_text(["http_5xx 503", "connection"])
    times = operator.locator("td.field-started").all_inner_texts()
    assert all(MILLISECONDS.fullmatch(t.strip()) for t in times), times
    filters = operator.locator("#changelist-filter").inner_text()
    assert "http_5xx" in filters and "Http 5Xx" not in filters
    assert_fits(operator, "#changelist .results")
    screenshot(operator, "attempt-list")

    operator.locator("th.field-id a").first.click()

    expect(operator.locator(".field-outcome_value .tc-badge")).to_have_text("http_5xx 503")
    assert MILLISECONDS.fullmatch(operator.locator(".field-started .readonly").inner_text().strip())
    screenshot(operator, "attempt-page")
