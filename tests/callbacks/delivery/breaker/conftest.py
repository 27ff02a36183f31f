"""Fixtures for breaker tests: retries without jitter, and a small breaker (threshold 3, open 30 s to 100 s)."""

import pytest


@pytest.fixture
def callbacks_settings(settings):
    """Change settings.CALLBACKS keys for one test: callbacks_settings(KEY=value, ...); retries
    without jitter, so the times a breaker holds tasks to are exact."""

    def change(**values):
        settings.CALLBACKS = {**settings.CALLBACKS, **values}

    change(BACKOFF_JITTER=0.0)
    return change


@pytest.fixture(autouse=True)
def small_breaker(callbacks_settings):
    """Every breaker test runs with a threshold of 3 and an open period of 30 s, at most 100 s."""
    callbacks_settings(
        BREAKER_FAILURE_THRESHOLD=3,
        BREAKER_OPEN_SECONDS=30.0,
        BREAKER_OPEN_MAX_SECONDS=100.0,
        MAX_CONCURRENCY_PER_ORIGIN=100,
    )
