"""Operator pages at a given screen size, with every request outside 127.0.0.1 refused, and the
attempts the dashboard and origin pages chart (written to the roll-ups as the recorder writes them).

`open_as_operator(browser, live_server, width, height)` logs a superuser in and returns the page;
`page.outside` lists the requests refused (a test asserts it stays empty)."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from callbacks.delivery.instruments.rollups import rollup_add
from callbacks.models import TaskExecution
from tests.browser.conftest import PASSWORD

DESKTOP = (1440, 1000)
PHONE = (390, 844)


def new_page(open_page, size, *, javascript=True, mobile=False):
    width, height = size
    return open_page(
        {"width": width, "height": height}, java_script_enabled=javascript, is_mobile=mobile, has_touch=mobile
    )


def log_in(page, username="operator"):
    user_model = get_user_model()
    if not user_model.objects.filter(username=username).exists():
        user_model.objects.create_superuser(username, f"{username}@example.com", PASSWORD)
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    return page


def record(task, outcomes, *, minutes_ago=2, duration_ms=20.0):
    """Attempts of `task` (outcome, status code) `minutes_ago`, added to the roll-ups."""
    started = timezone.now() - timedelta(minutes=minutes_ago)
    executions = [
        TaskExecution(
            task=task,
            tenant=task.tenant,
            attempt=n,
            started_at=started,
            duration_ms=duration_ms + n % 7,
            outcome=outcome,
            status_code=code,
            request_method="POST",
            request_url=task.url,
        )
        for n, (outcome, code) in enumerate(outcomes, start=1)
    ]
    rollup_add(executions=executions, tasks={task.id: task})
    return executions


def rising_load(task, *, minutes=12):
    """A load rising minute by minute, one failure in four."""
    for minute in range(1, minutes):
        record(
            task,
            [("http_5xx", 503) if n % 4 == 3 else ("success", 200) for n in range(minute * 3)],
            minutes_ago=minute,
            duration_ms=10.0 + 4 * minute,
        )
