"""Fixtures for claim tests."""

import pytest


@pytest.fixture
def callbacks_settings(settings):
    """Change settings.CALLBACKS keys for one test: callbacks_settings(KEY=value, ...); retries
    without jitter, so the times a claim sees are exact."""

    def change(**values):
        settings.CALLBACKS = {**settings.CALLBACKS, **values}

    change(BACKOFF_JITTER=0.0)
    return change
