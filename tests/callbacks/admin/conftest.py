"""Admin tests: a logged-in superuser's client and a clean cache (the console caches choices and charts)."""

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()
