"""The dashboard in a real browser: filters change the figures, the page refreshes itself in place
(and pauses), every chart point tells its time and value on hover, held apart from waiting for its
time, usable on a phone and without JavaScript. Screenshots go to tests/artifacts/."""

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import expect

from callbacks.models import BreakerState, CircuitBreaker
from callbacks.services.queues import queue_pause
from monitoring import dashboard
from tests.browser.helpers import screenshot
from tests.browser.operator_pages import DESKTOP, PHONE, log_in, new_page, record, rising_load
from tests.factories import declare_queues, make_task

pytestmark = pytest.mark.browser


@pytest.fixture
def desktop(open_page, db):
    page = log_in(new_page(open_page, DESKTOP))
    yield page
    assert page.outside == []
    page.context.close()


@pytest.fixture
def phone(open_page, db):
    page = log_in(new_page(open_page, PHONE, mobile=True))
    yield page
    assert page.outside == []
    page.context.close()


def figure(page, name):
    return page.locator(f"[data-figure='{name}'] b")


@pytest.fixture
def traffic(tenant, other_api):
    """Two tenants, two origins, two queues; and work held and waiting."""
    declare_queues("billing")
    paid = make_task(tenant=tenant, url="https://hooks.example.com/paid", queue="billing")
    rising_load(paid)
    other = make_task(tenant=other_api.tenant, url="https://api.partner.example.com/cb")
    record(other, [("success", 200)] * 40 + [("timeout", None)] * 2, minutes_ago=3, duration_ms=180.0)
    return {"paid": paid, "other": other, "tenant": tenant, "other_tenant": other_api.tenant}


def test_filters_change_the_figures(desktop, traffic):
    desktop.goto("/admin/dashboard/?window=15m")
    everything = figure(desktop, "attempts").inner_text()
    assert everything == f"{198 + 42:,}"  # 3 x (1 + ... + 11) + 42

    desktop.select_option("#id_tenant", label=traffic["other_tenant"].name)
    desktop.click(".tc-filters button[type=submit]")
    expect(figure(desktop, "attempts")).to_have_text("42")
    expect(figure(desktop, "success")).to_have_text("95.2 %")

    desktop.select_option("#id_tenant", label="every tenant")
    desktop.fill("#id_origin", "https://hooks.example.com/anything")
    desktop.select_option("#id_queue", "billing")
    desktop.click(".tc-filters button[type=submit]")
    expect(figure(desktop, "attempts")).to_have_text("198")
    expect(desktop.locator(".tc-note")).to_contain_text("hooks.example.com")
    expect(desktop.locator("#id_origin")).to_have_value("https://hooks.example.com:443")
    # The window links keep the filters.
    desktop.click(".tc-windows >> text=1h")
    expect(figure(desktop, "attempts")).to_have_text("198")
    assert "queue=billing" in desktop.url and "window=1h" in desktop.url
    screenshot(desktop, "dashboard-filtered")


def test_a_bad_filter_says_which_field_and_why(desktop, traffic):
    desktop.goto("/admin/dashboard/?window=15m&origin=hooks.example.com")

    expect(desktop.locator(".tc-field-error")).to_contain_text(
        "origin: Write an origin as scheme://host:port"
    )
    expect(figure(desktop, "attempts")).to_have_text("240")  # the bad filter is left out


def test_the_page_refreshes_in_place_and_pauses(desktop, traffic, monkeypatch):
    monkeypatch.setattr(dashboard, "REFRESH_SECONDS", 1)
    monkeypatch.setattr(dashboard, "CACHE_SECONDS", 0)
    navigations = []
    desktop.goto("/admin/dashboard/?window=15m")
    desktop.on("framenavigated", lambda frame: navigations.append(frame.url))
    desktop.evaluate("window.tcMarker = 'still the same page'")
    desktop.fill("#id_origin", "typed, not yet applied")
    expect(figure(desktop, "attempts")).to_have_text("240")
    expect(desktop.locator("#tc-live")).to_contain_text("refreshes every 1 s")

    record(traffic["other"], [("success", 200)] * 60, minutes_ago=1)

    expect(figure(desktop, "attempts")).to_have_text("300")
    expect(desktop.locator("#tc-charts svg[aria-label='Throughput']")).to_be_visible()
    assert navigations == []
    assert desktop.evaluate("window.tcMarker") == "still the same page"
    assert desktop.input_value("#id_origin") == "typed, not yet applied"

    desktop.click("button.tc-pause")
    expect(desktop.locator("#tc-live")).to_contain_text("paused")
    requests = []
    desktop.on(
        "request", lambda request: requests.append(request.url) if "dashboard" in request.url else None
    )
    record(traffic["other"], [("success", 200)] * 5, minutes_ago=1)
    desktop.wait_for_timeout(2500)  # two refresh periods: nothing to wait for, nothing may happen
    assert requests == []
    expect(figure(desktop, "attempts")).to_have_text("300")

    desktop.click("button.tc-pause")  # resume
    expect(figure(desktop, "attempts")).to_have_text("305")
    assert navigations == []


def test_every_chart_point_shows_its_time_and_value_on_hover(desktop, traffic):
    # The page counts its minutes from when it was drawn, somewhere between these two.
    before = timezone.now()
    desktop.goto("/admin/dashboard/?window=15m")
    after = timezone.now()
    throughput = desktop.locator("svg[aria-label='Throughput']")
    slots = throughput.locator("rect.slot")
    assert slots.count() == 16  # one per minute of 15, plus the current one

    slot = slots.nth(15 - 3)  # three minutes ago: 3 x 3 + 42 attempts
    slot.hover()
    tip = desktop.locator(".tc-tip")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("attempts/s: 0.85")
    starts = {
        f"{timezone.localtime(at.replace(second=0, microsecond=0) - timedelta(minutes=3)):%Y-%m-%d %H:%M}"
        for at in (before, after)
    }
    expect(tip).to_contain_text(re.compile("|".join(sorted(starts))))

    desktop.locator("svg[aria-label='Latency percentiles'] rect.slot").nth(12).hover()
    expect(tip).to_contain_text("p50:")
    expect(tip).to_contain_text(" ms")
    desktop.locator("svg[aria-label='Errors by class'] rect.slot").nth(12).hover()
    expect(tip).to_contain_text("timeout: 2 attempts")
    screenshot(desktop, "dashboard-hover")

    # Two charts a row at 1440 px, each wider than the old fixed 640 px drawing.
    boxes = [desktop.locator("svg.tc-chart").nth(i).bounding_box() for i in range(4)]
    assert boxes[0]["y"] == boxes[1]["y"] and boxes[2]["y"] > boxes[0]["y"]
    assert boxes[0]["width"] > 500


def test_held_apart_from_waiting_for_its_time(desktop, tenant):
    declare_queues("reports")
    queue_pause(name="reports", actor_type="user", actor="test")
    now = timezone.now()
    CircuitBreaker.objects.create(
        origin="https://down.example.com:443",
        state=BreakerState.OPEN,
        consecutive_failures=5,
        opened_at=now,
        next_probe_at=now + timedelta(minutes=5),
    )
    make_task(tenant=tenant, url="https://down.example.com/a")  # held: breaker open
    make_task(tenant=tenant, url="https://down.example.com/b")
    make_task(tenant=tenant, url="https://up.example.com/r", queue="reports")  # held: queue paused
    make_task(tenant=tenant, url="https://up.example.com/later", run_at=now + timedelta(hours=3))  # waiting
    make_task(tenant=tenant, url="https://up.example.com/now")  # ready

    desktop.goto("/admin/dashboard/")

    expect(figure(desktop, "held")).to_have_text("3")
    expect(figure(desktop, "waiting")).to_have_text("1")
    expect(figure(desktop, "ready")).to_have_text("1")
    waiting = desktop.locator("#tc-waiting")
    expect(waiting.locator("[data-reason='breaker open']")).to_have_text("breaker open: 2")
    expect(waiting.locator("[data-reason='queue paused']")).to_have_text("queue paused: 1")
    screenshot(desktop, "dashboard-held")
    # The breaker table leads to the origin's page.
    desktop.locator("#tc-breakers").get_by_role("link", name="https://down.example.com:443").click()
    desktop.wait_for_url("**/admin/origins/**")
    expect(desktop.locator("h1")).to_contain_text("https://down.example.com:443")


def test_usable_on_a_phone(phone, traffic):
    CircuitBreaker.objects.create(origin="https://down.example.com:443", state=BreakerState.OPEN)
    phone.goto("/admin/dashboard/?window=15m")
    expect(figure(phone, "attempts")).to_have_text("240")

    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE[0]
    for index in range(4):
        box = phone.locator("svg.tc-chart").nth(index).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE[0]
    # Wide tables scroll inside their box, not the page.
    depth = phone.locator("#tc-depth .tc-scroll")
    assert phone.evaluate("(el) => getComputedStyle(el).overflowX", depth.element_handle()) == "auto"
    phone.locator("svg[aria-label='Throughput'] rect.slot").nth(12).tap()
    expect(phone.locator(".tc-tip")).to_contain_text("attempts/s")
    screenshot(phone, "dashboard-phone")


def test_works_without_javascript(open_page, traffic):
    page = log_in(new_page(open_page, DESKTOP, javascript=False))
    page.goto("/admin/dashboard/?window=15m")
    assert page.locator("button.tc-pause").count() == 0
    expect(figure(page, "attempts")).to_have_text("240")
    assert (
        page.locator("svg[aria-label='Throughput'] rect.slot title").count() == 16
    )  # the browser's tooltips

    page.fill("#id_origin", "https://api.partner.example.com")
    page.click(".tc-filters button[type=submit]")
    expect(figure(page, "attempts")).to_have_text("42")
    record(traffic["other"], [("success", 200)] * 8, minutes_ago=1)
    cache.clear()
    page.click("a.tc-refresh-link")
    expect(figure(page, "attempts")).to_have_text("50")
    assert page.outside == []
    page.context.close()
