"""The tenant portal in a real browser at 1440 px (and a phone's width): a link made on the tenant's admin
page, signing in with it, the callbacks, a task page with retry, the replay's confirmation, schedules and
stats. Screenshots go to tests/artifacts/portal-*.png and admin-portal-link*.png."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from callbacks.delivery.instruments.rollups import rollup_add
from callbacks.domain.vocabulary import TaskStatus
from callbacks.models import CallbackTask, TaskExecution
from portal.services import portal_link_create
from tests.browser.conftest import PASSWORD
from tests.browser.helpers import PHONE, screenshot
from tests.factories import make_execution, make_task
from tests.portal.data import populate

pytestmark = pytest.mark.browser


@pytest.fixture
def acme(db):
    world = populate("acme", "acme")
    populate("globex", "globex")  # never to be seen
    return world


def sign_in(page, tenant):
    _, token = portal_link_create(tenant=tenant, actor="browser-test")
    page.goto(f"/portal/login/{token}/")
    expect(page.locator("h1")).to_have_text(f"Sign in to the callbacks portal of {tenant.name}")
    page.click("input[type=submit][value='Sign in']")
    page.wait_for_url("**/portal/")
    return page


def test_tasks_list_with_filters(open_page, acme):
    for n in range(6):
        make_task(
            tenant=acme.tenant,
            url=f"https://hooks.acme.example.com/orders/{n}",
            status="succeeded",
            attempts=1,
            last_outcome="success",
            last_status_code=200,
            business_id=f"order-{n}",
        )
    page = sign_in(open_page(), acme.tenant)
    expect(page.locator("#site-name")).to_have_text("Task Center callbacks — acme")
    rows = page.locator("#tc-tasks tbody tr")
    expect(rows).to_have_count(10)
    assert "globex" not in page.content()
    screenshot(page, "portal-tasks")

    page.select_option("#id_status", "dead")
    page.click("#tc-filters input[type=submit]")
    page.wait_for_url("**status=dead**")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td:nth-child(2) .tc-badge")).to_have_text("dead")
    page.fill("#id_q", "order-3")
    page.select_option("#id_status", "")
    page.click("#tc-filters input[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("orders/3")


def test_task_page_and_retry(open_page, acme):
    task = acme.tasks[TaskStatus.DEAD]
    page = sign_in(open_page(), acme.tenant)
    page.click(f"tr[data-task='{task.pk}'] .tc-id a")
    expect(page.locator("h1")).to_contain_text(str(task.pk))
    expect(page.locator("#tc-timeline .tc-attempt")).to_have_count(4)
    assert "acme-header-secret" not in page.content() and "acme-reply-secret" not in page.content()
    screenshot(page, "portal-task-page")

    page.click("input[value='Retry now']")
    expect(page.locator(".messagelist")).to_contain_text("scheduled to be sent again now")
    expect(page.locator("h1 .tc-badge")).to_have_text("scheduled")
    task.refresh_from_db()
    assert task.status == TaskStatus.SCHEDULED


def test_cancel_asks_first(open_page, acme):
    task = acme.tasks[TaskStatus.SCHEDULED]
    page = sign_in(open_page(), acme.tenant)
    page.goto(f"/portal/tasks/{task.pk}/")
    page.click("text=Cancel…")
    expect(page.locator("h1")).to_have_text("Cancel this callback?")
    page.click("input[value='Yes, cancel it']")
    expect(page.locator("h1 .tc-badge")).to_have_text("cancelled")


def test_replay_confirmation_lists_the_dead_letters(open_page, acme):
    for n in range(4):
        dead = make_task(
            tenant=acme.tenant,
            url=f"https://hooks.acme.example.com/refunds/{n}",
            status="dead",
            attempts=4,
            finished_at=timezone.now() - timedelta(minutes=5 * n),
            last_outcome="http_5xx",
            last_status_code=503,
        )
        make_execution(task=dead, attempt=4)
    CallbackTask.objects.filter(pk=acme.tasks[TaskStatus.DEAD].pk).update(
        finished_at=timezone.now() - timedelta(days=2)
    )
    page = sign_in(open_page(), acme.tenant)
    page.click(".tc-portal-nav >> text=Replay dead letters")
    page.fill("#id_since", "6h")
    page.click("input[value='Show them']")
    expect(page.locator("#tc-replay-list tbody tr")).to_have_count(4)
    expect(page.locator("#tc-replay-summary")).to_contain_text("4 dead letters")
    screenshot(page, "portal-replay-confirm")

    page.click("input[value='Yes, replay 4']")
    expect(page.locator(".messagelist")).to_contain_text("Replayed 4 dead letter(s)")
    assert CallbackTask.objects.filter(tenant=acme.tenant, status="dead").count() == 1


def test_stats_charts(open_page, acme):
    task = make_task(tenant=acme.tenant, url="https://hooks.acme.example.com/paid")
    now = timezone.now()
    executions = []
    for hour in range(0, 20):
        for n in range(3 + hour % 5):
            # Mostly delivered; every fourth attempt of an hour failed, by a 5xx or a timeout.
            if n % 4:
                outcome, code = "success", 200
            else:
                outcome, code = ("http_5xx", 503) if hour % 3 else ("timeout", None)
            executions.append(
                TaskExecution(
                    task=task,
                    tenant=acme.tenant,
                    attempt=1,
                    started_at=now - timedelta(hours=hour, minutes=7),
                    duration_ms=30.0 + 11 * n + hour,
                    outcome=outcome,
                    status_code=code,
                    request_method="POST",
                    request_url=task.url,
                )
            )
    rollup_add(executions=executions, tasks={task.id: task})
    page = sign_in(open_page(), acme.tenant)
    page.click(".tc-portal-nav >> text=Stats")
    charts = page.locator("svg.tc-chart")
    expect(charts).to_have_count(4)
    assert int(page.locator("svg[aria-label='Throughput']").get_attribute("data-points")) >= 15
    expect(page.locator("#tc-summary")).to_contain_text(str(len(executions)))
    screenshot(page, "portal-stats")


def test_schedules_with_next_runs(open_page, acme):
    from callbacks.domain.vocabulary import ActorType
    from callbacks.services.schedules import schedule_create

    schedule_create(
        tenant=acme.tenant,
        data={
            "name": "hourly-report",
            "cron": "15 * * * *",
            "timezone": "Europe/Paris",
            "task_template": {"url": "https://hooks.acme.example.com/report"},
        },
        actor_type=ActorType.TENANT,
        actor="test",
    )
    page = sign_in(open_page(), acme.tenant)
    page.click(".tc-portal-nav >> text=Schedules")
    expect(page.locator("#tc-schedules tbody tr")).to_have_count(2)
    screenshot(page, "portal-schedules")
    page.click("text=acme-nightly")
    expect(page.locator("#tc-next-runs li")).to_have_count(10)
    screenshot(page, "portal-schedule-page")


def test_readable_on_a_phone(open_page, acme):
    page = sign_in(open_page(PHONE), acme.tenant)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide on a {PHONE['width']} px screen"
    screenshot(page, "portal-phone-tasks")
    page.goto(f"/portal/tasks/{acme.tasks[TaskStatus.DEAD].pk}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "portal-phone-task-page")


def test_operator_makes_a_link_on_the_tenant_page_and_it_works(open_page, acme):
    get_user_model().objects.create_superuser("operator", "ops@example.com", PASSWORD)
    admin = open_page()
    admin.goto("/admin/login/")
    admin.fill("#id_username", "operator")
    admin.fill("#id_password", PASSWORD)
    admin.click("input[type=submit]")
    admin.wait_for_url("**/admin/")
    admin.goto(f"/admin/callbacks/tenant/{acme.tenant.pk}/change/")
    button = admin.locator("#tc-portal-link-form button")
    expect(button).to_be_visible()
    screenshot(admin, "admin-portal-link-button")

    admin.select_option("#tc-portal-hours", "8")
    button.click()
    url = admin.locator("#tc-portal-url").inner_text()
    assert re.fullmatch(r"http://[^/]+/portal/login/[^/]+/", url)
    screenshot(admin, "admin-portal-link")

    tenant_side = open_page()
    tenant_side.goto(url)
    screenshot(tenant_side, "portal-signin")
    tenant_side.click("input[value='Sign in']")
    expect(tenant_side.locator("#site-name")).to_have_text("Task Center callbacks — acme")

    # Revoked from the list: the tenant's open session ends at its next click.
    admin.goto(f"/admin/portal/portallink/?tenant__id__exact={acme.tenant.pk}")
    admin.locator("#result_list tbody input[type=checkbox]").first.check()
    admin.select_option("select[name=action]", "revoke")
    admin.click("button[name=index]")
    admin.click("input[value='Yes, revoke']")
    expect(admin.locator(".messagelist")).to_contain_text("Revoked: 1")
    tenant_side.click(".tc-portal-nav >> text=Schedules")
    expect(tenant_side.locator("h1")).to_have_text("Your portal session has ended")
    screenshot(tenant_side, "portal-ended")


def test_whitelist_and_gone_urls(open_page, acme):
    page = sign_in(open_page(), acme.tenant)
    page.click(".tc-portal-nav >> text=URL whitelist")
    expect(page.locator("#tc-whitelist tbody tr")).to_have_count(1)
    expect(page.locator("#tc-whitelist")).to_contain_text("acme.example.com")
    screenshot(page, "portal-whitelist")
    page.click(".tc-portal-nav >> text=Gone URLs")
    expect(page.locator("#tc-gone tbody tr[data-gone]")).to_have_count(1)
    screenshot(page, "portal-gone")
    page.click("#tc-gone input[value='Clear']")
    expect(page.locator(".messagelist")).to_contain_text("is called again from now on")
    expect(page.locator("#tc-gone tbody tr[data-gone]")).to_have_count(0)
