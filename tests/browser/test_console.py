"""The operator console in a real browser: log in, read the dashboard, filter tasks, retry a dead task and see
it delivered, add whitelist entries. Screenshots go to tests/artifacts/."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from callbacks.delivery.claim import leases
from callbacks.delivery.instruments.rollups import rollup_add
from callbacks.delivery.worker import DeliveryWorker
from callbacks.models import CallbackTask, TaskExecution, TaskStatus, UrlWhitelistEntry
from tests.browser.helpers import screenshot
from tests.factories import make_task

pytestmark = pytest.mark.browser


def test_login_lands_on_the_index_with_the_console_links(operator):
    expect(operator.locator("#tc-console-links")).to_be_visible()
    expect(operator.locator("a", has_text="Delivery dashboard")).to_be_visible()


def test_dashboard_shows_charts_with_data(operator, tenant):
    task = make_task(tenant=tenant, url="https://hooks.example.com/paid")
    now = timezone.now()
    executions = []
    for minute in range(1, 12):
        for n in range(minute):  # a rising load, a few failures
            outcome, code = ("http_5xx", 503) if n % 4 == 3 else ("success", 200)
            executions.append(
                TaskExecution(
                    task=task,
                    tenant=tenant,
                    attempt=1,
                    started_at=now - timedelta(minutes=minute),
                    duration_ms=10.0 + 7 * n,
                    outcome=outcome,
                    status_code=code,
                    request_method="POST",
                    request_url=task.url,
                )
            )
    rollup_add(executions=executions, tasks={task.id: task})

    operator.click("text=Delivery dashboard")
    operator.click(".tc-windows >> text=15m")
    operator.wait_for_url("**window=15m**")

    charts = operator.locator("svg.tc-chart")
    assert charts.count() == 4
    for index in range(4):
        assert charts.nth(index).is_visible()
    throughput = operator.locator("svg[aria-label='Throughput']")
    assert int(throughput.get_attribute("data-points")) >= 11
    assert operator.locator("svg[aria-label='Latency percentiles'] polyline").count() == 3
    assert operator.locator("svg[aria-label='Errors by class'] rect.bar").count() >= 5
    expect(operator.locator("#tc-summary [data-figure='attempts'] b")).to_have_text(f"{len(executions):,}")
    screenshot(operator, "dashboard")


def test_filter_tasks_by_status(operator, tenant):
    for status in ("dead", "dead", "succeeded", "retrying"):
        make_task(tenant=tenant, url="https://hooks.example.com/", status=status)

    operator.goto("/admin/callbacks/callbacktask/")
    assert operator.locator("#result_list tbody tr").count() == 4
    operator.locator("#changelist-filter").get_by_role("link", name="dead", exact=True).click()

    operator.wait_for_url("**status=dead**")
    expect(operator.locator("#result_list tbody tr")).to_have_count(2)
    rows = operator.locator("#result_list tbody tr")
    assert rows.count() == 2
    assert {rows.nth(i).locator("td.field-status_value").inner_text() for i in range(2)} == {"dead"}
    screenshot(operator, "tasks-filtered-dead")


def test_retry_now_on_a_dead_task_and_see_it_delivered(operator, tenant, receiver):
    task = make_task(
        tenant=tenant,
        url=receiver.url + "/hook",
        status=TaskStatus.DEAD,
        attempts=4,
        last_outcome="http_5xx",
        last_status_code=503,
        next_attempt_at=None,
        finished_at=timezone.now(),
    )

    operator.goto("/admin/callbacks/callbacktask/?status=dead")
    operator.check(f"input.action-select[value='{task.pk}']")
    operator.select_option("select[name=action]", "retry_now")
    operator.click("button[name=index]")
    expect(operator.locator("ul.messagelist li.success", has_text="Retried: 1.")).to_be_visible()

    worker = DeliveryWorker(concurrency=2, flush_seconds=0.01, name="browser-test")
    try:
        for claim in leases.claim_due(limit=10):
            worker.deliver_lane(claim.token, claim.task_ids)
        assert worker.wait_idle(timeout=30)
    finally:
        worker.shutdown(timeout=10)

    assert receiver.received[0].headers["x-callback-task-id"] == str(task.pk)
    operator.goto(f"/admin/callbacks/callbacktask/{task.pk}/change/")
    expect(operator.locator(".field-status_value .readonly")).to_have_text("succeeded")
    # The one attempt it was granted, and the status history that led there.
    expect(operator.locator("#executions-group td.field-outcome_value")).to_have_text(["success 200"])
    expect(operator.locator("#events-group td.field-note")).to_contain_text(["retried by operator"])
    assert CallbackTask.objects.get(pk=task.pk).status == TaskStatus.SUCCEEDED
    screenshot(operator, "task-retried-and-delivered")


def test_whitelist_entry_invalid_then_valid_then_checked(operator, tenant):
    operator.goto("/admin/callbacks/urlwhitelistentry/add/")
    operator.select_option("#id_tenant", label=tenant.name)
    operator.fill("#id_host", "*.*.example.com")
    operator.fill("#id_path_prefix", "hooks")
    operator.click("input[name=_save]")

    expect(operator.locator(".errornote")).to_be_visible()
    expect(operator.locator(".field-host .errorlist", has_text="only one leading")).to_be_visible()
    expect(operator.locator(".field-path_prefix .errorlist", has_text="must start with /")).to_be_visible()
    screenshot(operator, "whitelist-invalid")
    assert not UrlWhitelistEntry.objects.exists()

    operator.fill("#id_host", "API.example.com")
    operator.fill("#id_path_prefix", "/hooks")
    operator.click("input[name=_save]")

    expect(operator.locator("ul.messagelist li.success")).to_be_visible()
    entry = UrlWhitelistEntry.objects.get()
    assert (entry.host, entry.path_prefix) == ("api.example.com", "/hooks")

    operator.click("text=Would this URL be allowed?")
    operator.select_option("#id_tenant", label=tenant.name)
    operator.fill("#id_url", "https://api.example.com/hooks/paid")
    operator.click("#tc-check-form input[type=submit]")
    # The verdict also rests on the SSRF guard's resolution of the name, which this machine cannot do;
    # the whitelist's own line and the entry that matches are what this test is about.
    expect(operator.locator("#tc-verdict")).to_contain_text("https://api.example.com/hooks/paid for acme")
    whitelist = operator.locator("#tc-checks tbody tr", has=operator.locator("th", has_text="whitelist"))
    expect(whitelist.locator(".tc-badge")).to_have_text("passed")
    assert operator.locator("#tc-matching").inner_text().strip() == "*://api.example.com/hooks"
    screenshot(operator, "whitelist-check")
