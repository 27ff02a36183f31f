"""Helpers for the browser tests: browser contexts that reach this machine only, full-page screenshots kept
in tests/artifacts/."""

from pathlib import Path
from urllib.parse import urlsplit

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def screenshot(page, name: str) -> Path:
    """Saves a full-page screenshot as tests/artifacts/<name>.png and returns its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# The live server answers on localhost, which is 127.0.0.1 here.
LOOPBACK = {"127.0.0.1", "localhost"}
WIDE = {"width": 1440, "height": 1000}
# How long an action (a click, a fill, a navigation) may wait for the page.
ACTION_TIMEOUT_MS = 15_000
PHONE = {"width": 390, "height": 844}


def offline_context(browser, base_url: str, *, viewport=WIDE, **options):
    """A browser context whose requests to any host but this machine are aborted and listed in
    `context.outside`, so a page that would fetch a font or a script from a CDN is caught."""
    context = browser.new_context(viewport=viewport, base_url=base_url, **options)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.outside = []

    def only_loopback(route):
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            context.outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    return context
