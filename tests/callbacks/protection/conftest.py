"""Fixtures for breaker and target-limit tests."""

import pytest


@pytest.fixture
def callbacks_settings(settings):
    """Change settings.CALLBACKS keys for one test: callbacks_settings(KEY=value, ...)."""

    def change(**values):
        settings.CALLBACKS = {**settings.CALLBACKS, **values}

    change(BACKOFF_JITTER=0.0)
    return change
