"""Admin pages in a real browser at 1440 px: schedules (edit with a refusal on its field, fire now, the
callbacks fired), the index's console links and the broker tables (superuser and staff), the URL check,
run-time settings and the replay page. Screenshots go to tests/artifacts/."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone
from playwright.sync_api import expect

from callbacks.models import CallbackSchedule, CallbackTask, RuntimeSetting, TaskStatus
from callbacks.services.schedules import schedule_create
from tests.browser.conftest import PASSWORD
from tests.browser.helpers import screenshot
from tests.factories import make_task

pytestmark = pytest.mark.browser


@pytest.fixture
def staff(page):
    """A staff member given every permission, not a superuser, logged in through the form."""
    user = get_user_model().objects.create_user("staff", password=PASSWORD, is_staff=True)
    user.user_permissions.set(Permission.objects.all())
    page.goto("/admin/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    return page


@pytest.fixture
def schedule(tenant):
    return schedule_create(
        tenant=tenant,
        data={
            "name": "nightly report",
            "cron": "30 2 * * *",
            "timezone": "Europe/Berlin",
            "task_template": {"url": "https://hooks.example.com/report", "body": {"kind": "nightly"}},
        },
        actor_type="user",
        actor="x",
    )


def test_schedule_edit_refuses_a_bad_cron_on_its_field_then_saves(operator, schedule):
    operator.goto(f"/admin/callbacks/callbackschedule/{schedule.pk}/change/")
    expect(operator.locator(".field-state .tc-badge")).to_have_text("active")
    operator.fill("#id_cron", "61 * * * *")
    operator.fill("#id_timezone", "Mars/Olympus")
    operator.click("input[name=_continue]")

    expect(operator.locator(".field-cron .errorlist")).to_contain_text("is not a valid cron expression")
    expect(operator.locator(".field-timezone .errorlist")).to_contain_text("is not an IANA time zone")
    screenshot(operator, "schedule-edit")
    assert CallbackSchedule.objects.get(pk=schedule.pk).cron == "30 2 * * *"

    operator.fill("#id_cron", "0 6 * * 1-5")
    operator.fill("#id_timezone", "Europe/Berlin")
    operator.click("input[name=_continue]")
    expect(operator.locator("ul.messagelist li.success")).to_be_visible()
    assert CallbackSchedule.objects.get(pk=schedule.pk).cron == "0 6 * * 1-5"


def test_fire_now_then_the_page_lists_the_callback_and_links_the_filtered_task_list(
    operator, tenant, schedule
):
    older = make_task(tenant=tenant, url="https://hooks.example.com/report", schedule=schedule)
    CallbackTask.objects.filter(pk=older.pk).update(
        status=TaskStatus.DEAD, created_at=timezone.now() - timedelta(days=1)
    )
    make_task(tenant=tenant, url="https://hooks.example.com/other")  # not the schedule's

    operator.goto(f"/admin/callbacks/callbackschedule/{schedule.pk}/change/")
    operator.click("#tc-fire-now")

    expect(operator.locator("ul.messagelist li.success")).to_contain_text("Fired: callback")
    fired = CallbackTask.objects.filter(schedule=schedule).exclude(pk=older.pk).get()
    rows = operator.locator("#tc-fired tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(str(fired.pk)[:8])  # newest first
    expect(rows.nth(0).locator(".tc-badge")).to_have_text("scheduled")
    expect(rows.nth(1).locator(".tc-badge")).to_have_text("dead")
    screenshot(operator, "schedule-fired")

    operator.click("#tc-pause")
    expect(operator.locator(".field-state .tc-badge")).to_have_text("paused")
    operator.click("#tc-fired-all")
    operator.wait_for_url(f"**schedule={schedule.pk}**")
    expect(operator.locator("#result_list tbody tr")).to_have_count(2)

    operator.goto("/admin/callbacks/callbackschedule/")
    expect(operator.locator("td.field-state .tc-badge")).to_have_text(["paused"])
    screenshot(operator, "schedule-list")


def _one_line(locator) -> None:
    """The text sits on one line: no wrapping one character per line in a narrow column."""
    box = locator.bounding_box()
    line = float(locator.evaluate("e => parseFloat(getComputedStyle(e).lineHeight) || 20"))
    assert box["height"] < 1.8 * line, box


def test_the_index_shows_the_console_links_readably_and_broker_internals_to_a_superuser(operator):
    links = operator.locator("#tc-console-links li > a")
    assert links.all_inner_texts() == [
        "Delivery dashboard",
        "Receiver origins",
        "Replay dead letters",
        "Would this URL be allowed?",
        "Run-time settings",
        "Send test callback",
        "Portal sign-in links",
        "Schedules",
    ]
    for index in range(links.count()):
        _one_line(links.nth(index))
    box = operator.locator("#tc-console-links").bounding_box()
    assert box["width"] > 850  # above the app list and the recent actions, across both
    expect(operator.locator(".app-django_q")).to_contain_text("Broker internals")
    # Below every app of the service's own.
    apps = operator.locator("#content-main .module[class*='app-']")
    assert "app-django_q" in apps.last.get_attribute("class")
    screenshot(operator, "admin-index")
    operator.click("#tc-console-links >> text=Run-time settings")
    expect(operator.locator("#tc-settings")).to_be_visible()


def test_a_staff_member_sees_no_broker_table_and_cannot_open_one(staff):
    expect(staff.locator("#tc-console-links li")).to_have_count(8)
    expect(staff.locator(".app-callbacks")).to_be_visible()
    assert staff.locator(".app-django_q").count() == 0
    assert "Broker internals" not in staff.content() and "Django Q" not in staff.content()
    screenshot(staff, "admin-index-staff")
    for model in ("failure", "success", "schedule", "ormq"):
        response = staff.goto(f"/admin/django_q/{model}/")
        assert response.status == 403, model


def test_url_check_shows_each_check_and_one_verdict(operator, tenant, settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "ALLOWED_NETWORKS": []}
    operator.goto("/admin/callbacks/urlwhitelistentry/check/")
    operator.select_option("#id_tenant", label=tenant.name)
    operator.fill("#id_url", "http://169.254.169.254/latest/meta-data/")
    operator.click("#tc-check-form input[type=submit]")

    expect(operator.locator("#tc-verdict")).to_have_text(
        "Refused: http://169.254.169.254/latest/meta-data/ for acme"
    )
    rows = operator.locator("#tc-checks tbody tr")
    expect(rows.locator("th")).to_have_text(["URL rules", "whitelist", "gone", "SSRF guard"])
    expect(rows.locator(".tc-badge")).to_have_text(["passed", "passed", "passed", "refused"])
    expect(rows.nth(1)).to_contain_text("not enforced")
    expect(rows.nth(3)).to_contain_text("a cloud metadata address")
    expect(operator.locator("#tc-enforcement")).to_contain_text("does not enforce its whitelist")
    assert "Denied" not in operator.content()
    screenshot(operator, "url-check")


def test_runtime_settings_show_every_key_and_change_one_in_place(operator):
    operator.goto("/admin/callbacks/runtimesetting/")
    row = operator.locator("#tc-setting-MAX_RETRIES")
    expect(row.locator(".tc-badge")).to_have_text("default")
    assert operator.locator("#tc-settings tbody tr").count() >= 16

    row.locator("input[name=value]").fill("99")
    row.locator("button[value=set]").click()
    expect(operator.locator("#tc-setting-MAX_RETRIES .errorlist")).to_contain_text("between 0 and 20")
    assert not RuntimeSetting.objects.exists()

    operator.locator("#tc-setting-MAX_RETRIES input[name=value]").fill("7")
    operator.locator("#tc-setting-MAX_RETRIES button[value=set]").click()
    expect(operator.locator("ul.messagelist li.success")).to_contain_text("MAX_RETRIES set to 7")
    row = operator.locator("#tc-setting-MAX_RETRIES")
    expect(row.locator(".tc-value")).to_have_text("7")
    expect(row.locator(".tc-badge")).to_have_text("runtime override")
    expect(row.locator("button[value=reset]")).to_be_visible()
    screenshot(operator, "runtime-settings")

    row.locator("button[value=reset]").click()
    expect(operator.locator("#tc-setting-MAX_RETRIES .tc-badge")).to_have_text("default")
    assert not RuntimeSetting.objects.exists()


def test_replay_dead_lists_what_it_will_replay_then_replays_it(operator, tenant):
    now = timezone.now()
    recent = [
        make_task(
            tenant=tenant,
            url=f"https://hooks.example.com/orders/{n}",
            status=TaskStatus.DEAD,
            finished_at=now - timedelta(minutes=10 * n + 5),
            attempts=4,
            last_outcome=outcome,
            last_status_code=code,
        )
        for n, (outcome, code) in enumerate([("http_5xx", 503), ("timeout", None), ("connection", None)])
    ]
    old = make_task(
        tenant=tenant,
        url="https://hooks.example.com/old",
        status=TaskStatus.DEAD,
        finished_at=now - timedelta(days=3),
    )

    operator.goto("/admin/callbacks/callbacktask/replay-dead/")
    operator.select_option("#id_tenant", label=tenant.name)
    operator.fill("#id_since", "6h")
    operator.click("#tc-replay-filter input[type=submit]")

    expect(operator.locator("#tc-replay-count")).to_contain_text("3 dead letters")
    rows = operator.locator("#tc-replay-list tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.locator(".tc-badge")).to_have_text(["http_5xx 503", "timeout", "connection"])
    expect(rows.nth(0)).to_contain_text("https://hooks.example.com/orders/0")
    screenshot(operator, "replay-dead-confirm")

    operator.click("#tc-replay-confirm input[type=submit]")
    expect(operator.locator("ul.messagelist li.success")).to_contain_text("Replayed 3 dead letter(s).")
    statuses = dict(CallbackTask.objects.values_list("pk", "status"))
    assert {statuses[task.pk] for task in recent} == {TaskStatus.SCHEDULED}
    assert statuses[old.pk] == TaskStatus.DEAD
