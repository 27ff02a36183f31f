"""Fixtures for claim tests, and the rule that runs the SQL-against-ORM comparisons on PostgreSQL only."""

import pytest
from django.db import connection


def pytest_collection_modifyitems(config, items):
    """Tests marked `claim_sql` compare the claim's hand-written PostgreSQL statement with the ORM's
    definition. On another database there is no such statement (`Round.read` falls back to the ORM),
    so they would compare the ORM with itself: they are deselected there, not run and not skipped."""
    if connection.vendor == "postgresql":
        return
    deselected = [item for item in items if item.get_closest_marker("claim_sql")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("claim_sql")]


@pytest.fixture
def callbacks_settings(settings):
    """Change settings.CALLBACKS keys for one test: callbacks_settings(KEY=value, ...); retries
    without jitter, so the times a claim sees are exact."""

    def change(**values):
        settings.CALLBACKS = {**settings.CALLBACKS, **values}

    change(BACKOFF_JITTER=0.0)
    return change
