"""The API docs in a real browser, with every request outside 127.0.0.1 refused: both pages render the
reference and no request fails, so an operator's browser needs nothing from the internet."""

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def offline_page(page, live_server):
    """`page` (which reaches this machine only) with every failed request and error answer recorded.
    `page.local` is the live server as 127.0.0.1."""
    page.failures = []
    page.local = live_server.url.replace("://localhost:", "://127.0.0.1:")
    page.on("requestfailed", lambda request: page.failures.append(f"{request.url}: {request.failure}"))
    page.on("response", lambda response: response.status >= 400 and page.failures.append(response.url))
    return page


# Where each page shows an operation's title.
REDOC_TITLE = "h2 >> text='{}'"
SWAGGER_TITLE = ".opblock-summary-description >> text='{}'"


@pytest.mark.parametrize(
    ("path", "title", "name"),
    [
        ("/api/docs/", REDOC_TITLE, "api-docs-redoc"),
        ("/api/docs/swagger/", SWAGGER_TITLE, "api-docs-swagger"),
    ],
)
def test_docs_pages_load_nothing_from_outside(offline_page, path, title, name):
    offline_page.goto(offline_page.local + path)
    for operation in (
        "Register a callback",
        "List circuit breakers",
        "Delivery statistics of a recent window",
    ):
        expect(offline_page.locator(title.format(operation))).to_be_visible()
    offline_page.wait_for_load_state("networkidle")
    screenshot(offline_page, name)
    assert offline_page.outside == []
    assert offline_page.failures == []


def test_each_docs_page_links_to_the_other(offline_page):
    offline_page.goto(offline_page.local + "/api/docs/")
    expect(offline_page.locator(REDOC_TITLE.format("Register a callback"))).to_be_visible()
    offline_page.wait_for_load_state("networkidle")  # leaving earlier would abort its requests
    offline_page.click("text=Try it (Swagger UI)")
    offline_page.wait_for_url("**/api/docs/swagger/")
    expect(offline_page.locator(SWAGGER_TITLE.format("Register a callback"))).to_be_visible()
    assert offline_page.outside == [] and offline_page.failures == []
