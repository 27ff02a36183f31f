"""An origin's page in a real browser: reached from the breakers' admin and the origins list, it shows
the breaker, the limits in force, what is in flight, the latest attempts with links to their tasks,
and charts; staff only. Screenshots go to tests/artifacts/."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from callbacks.models import BreakerState, CallbackTask, CircuitBreaker, Lane, TaskStatus
from monitoring import dashboard
from tests.browser.helpers import screenshot
from tests.browser.operator_pages import DESKTOP, PHONE, log_in, new_page, rising_load
from tests.factories import make_execution, make_task

pytestmark = pytest.mark.browser
ORIGIN = "https://hooks.example.com:443"


@pytest.fixture
def slowed_origin(tenant, settings):
    """An origin whose breaker is open and slowed down, with a lane, tasks in flight and waiting, and attempts."""
    settings.CALLBACKS = {**settings.CALLBACKS, "MAX_CONCURRENCY_PER_ORIGIN": 16}
    tenant.max_concurrency_per_origin = 4
    tenant.save()
    now = timezone.now()
    breaker = CircuitBreaker.objects.create(
        origin=ORIGIN,
        state=BreakerState.OPEN,
        consecutive_failures=6,
        open_count=2,
        opened_at=now - timedelta(seconds=20),
        next_probe_at=now + timedelta(seconds=40),
        last_error="HTTP 503",
        concurrency_limit=3,
    )
    running = make_task(tenant=tenant, url="https://hooks.example.com/paid", status=TaskStatus.RUNNING)
    running.locked_until = now + timedelta(seconds=30)
    running.save()
    Lane.objects.create(
        token="a1b2c3d4e5f6",
        queue="default",
        origin=ORIGIN,
        tenant=tenant,
        width=1,
        created_at=now - timedelta(seconds=2),
        expires_at=now + timedelta(seconds=30),
    )
    make_task(tenant=tenant, url="https://hooks.example.com/paid")  # held by the breaker
    make_task(tenant=tenant, url="https://hooks.example.com/later", run_at=now + timedelta(hours=1))
    for attempt in range(1, 6):
        make_execution(task=running, attempt=attempt, started_at=now - timedelta(seconds=60 - attempt))
    rising_load(running)
    return breaker


def test_the_page_shows_breaker_limits_in_flight_and_attempts(open_page, slowed_origin):
    page = log_in(new_page(open_page, DESKTOP))
    # From the breakers' admin list, by its link field.
    page.goto("/admin/callbacks/circuitbreaker/")
    page.get_by_role("link", name="limits, in flight, attempts").click()
    page.wait_for_url("**/admin/origins/https_3A_2F_2Fhooks.example.com_3A443/")

    expect(page.locator("h1")).to_have_text(f"Origin {ORIGIN}")
    expect(page.locator("[data-figure='breaker']")).to_contain_text("open")
    breaker = page.locator("#tc-breaker")
    expect(breaker).to_contain_text("HTTP 503")
    expect(breaker).to_contain_text("3 in flight (it answered 429 or 503)")
    limits = page.locator("#tc-limits")
    expect(limits.locator("[data-limit='concurrency']")).to_have_text("3 in flight (slowed down from 16)")
    expect(limits.locator("[data-limit='in-use']")).to_have_text("1")
    expect(limits).to_contain_text("none: its breaker holds it")
    expect(limits.locator("table")).to_contain_text("acme")
    in_flight = page.locator("#tc-in-flight")
    expect(in_flight.locator("h2")).to_have_text("In flight now: 1 task, 1 lane")
    expect(in_flight).to_contain_text("a1b2c3d4")
    expect(page.locator("[data-figure='held'] b")).to_have_text("1")
    expect(page.locator("[data-figure='waiting'] b")).to_have_text("1")
    attempts = page.locator("#tc-attempts tbody tr")
    expect(attempts).to_have_count(5)
    expect(attempts.first).to_contain_text("http_5xx 503")
    assert page.locator("svg.tc-chart").count() == 4
    page.locator("svg[aria-label='Success rate'] rect.slot").nth(25).hover()
    expect(page.locator(".tc-tip")).to_contain_text("success:")
    screenshot(page, "origin-page")

    attempts.first.locator("a").click()  # to the attempt's task
    page.wait_for_url("**/admin/callbacks/callbacktask/**/change/")
    assert page.outside == []
    page.context.close()


def test_the_page_on_a_phone(open_page, slowed_origin):
    page = log_in(new_page(open_page, PHONE, mobile=True))
    page.goto("/admin/origins/https_3A_2F_2Fhooks.example.com_3A443/")
    expect(page.locator("#tc-limits")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE[0]
    screenshot(page, "origin-page-phone")
    page.context.close()


def test_the_origins_list_finds_one(open_page, slowed_origin, tenant):
    make_task(tenant=tenant, url="https://fine.example.com/x")
    page = log_in(new_page(open_page, DESKTOP))
    page.goto("/admin/")
    page.get_by_role("link", name="Receiver origins").click()
    rows = page.locator("#tc-origins tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(ORIGIN)
    expect(rows.first).to_contain_text("open")
    screenshot(page, "origins-list")

    page.fill("#id_origin", "fine.example.com")
    page.click("text=Open its page")
    expect(page.locator(".tc-field-error")).to_contain_text("origin: Write an origin as scheme://host:port")
    page.fill("#id_origin", "https://fine.example.com/x")
    page.click("text=Open its page")
    expect(page.locator("h1")).to_have_text("Origin https://fine.example.com:443")
    expect(page.locator("#tc-breaker")).to_contain_text("never failed")
    page.context.close()


def test_a_task_in_the_list_links_to_its_origin(open_page, slowed_origin):
    page = log_in(new_page(open_page, DESKTOP))
    page.goto("/admin/callbacks/callbacktask/")
    page.locator("td.field-origin_link a").first.click()
    expect(page.locator("h1")).to_have_text(f"Origin {ORIGIN}")
    page.context.close()


def test_not_for_anyone_but_staff(open_page, slowed_origin, django_user_model):
    page = new_page(open_page, DESKTOP)
    page.goto("/admin/origins/https_3A_2F_2Fhooks.example.com_3A443/")
    assert "/admin/login/" in page.url
    expect(page.locator("body")).not_to_contain_text("HTTP 503")

    django_user_model.objects.create_user("clerk", password="console-test-password", is_staff=False)
    page.fill("#id_username", "clerk")
    page.fill("#id_password", "console-test-password")
    page.click("input[type=submit]")
    expect(page.locator(".errornote")).to_be_visible()  # the admin does not let a non-staff user in
    page.goto("/admin/origins/")
    assert "/admin/login/" in page.url
    page.context.close()


def test_the_page_refreshes_in_place(open_page, slowed_origin, monkeypatch):
    monkeypatch.setattr(dashboard, "REFRESH_SECONDS", 1)
    monkeypatch.setattr(dashboard, "CACHE_SECONDS", 0)
    page = log_in(new_page(open_page, DESKTOP))
    page.goto("/admin/origins/https_3A_2F_2Fhooks.example.com_3A443/")
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    attempts = page.locator("#tc-attempts tbody tr")
    expect(attempts).to_have_count(5)

    task = CallbackTask.objects.filter(origin=ORIGIN, status=TaskStatus.RUNNING).get()
    make_execution(task=task, attempt=6, outcome="success", status_code=200)
    CircuitBreaker.objects.filter(origin=ORIGIN).update(state=BreakerState.CLOSED, concurrency_limit=None)

    expect(attempts).to_have_count(6)
    expect(attempts.first).to_contain_text("success 200")
    expect(page.locator("[data-figure='breaker']")).to_contain_text("closed")
    expect(page.locator("#tc-limits [data-limit='concurrency']")).to_have_text("16 in flight")
    assert navigations == []
    page.context.close()
