"""Playwright driving Debian's headless Chromium (/usr/bin/chromium; `make test` installs it) against
pytest-django's live server. No browser is ever downloaded.

The browser lives for this package only: Playwright's sync API keeps an event loop in the main
thread, which makes Django refuse ORM calls there (SynchronousOnlyOperation) unless
DJANGO_ALLOW_ASYNC_UNSAFE is set. Both are undone when the package's tests end, so the rest of
the suite runs with Django's usual check.
"""

import os

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect, sync_playwright

from tests.browser.helpers import ACTION_TIMEOUT_MS, WIDE, offline_context

# An assertion on the page an action leads to waits as long as the action may: Playwright's 5 s
# default ran out in CI, two test workers busy beside the live server, while the admin was still
# answering the POST of an action's confirmation.
expect.set_options(timeout=ACTION_TIMEOUT_MS)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "console-test-password"


@pytest.fixture(scope="package")
def browser():
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def open_page(browser, live_server):
    """`open_page(viewport, **context options)`: a page in a context of its own that reaches this machine
    only; every context is closed after the test, which fails if any page asked for another host."""
    contexts = []

    def open_(viewport=WIDE, **options):
        context = offline_context(browser, live_server.url, viewport=viewport, **options)
        contexts.append(context)
        page = context.new_page()
        page.outside = context.outside
        return page

    yield open_
    outside = [url for context in contexts for url in context.outside]
    for context in contexts:
        context.close()
    assert outside == [], f"pages asked for addresses off this machine: {outside}"


@pytest.fixture
def page(open_page):
    """A page at the operators' width (1440 px)."""
    return open_page()


@pytest.fixture
def operator(page):
    """A superuser logged in through the admin's login form."""
    get_user_model().objects.create_superuser("operator", "ops@example.com", PASSWORD)
    page.goto("/admin/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    return page
