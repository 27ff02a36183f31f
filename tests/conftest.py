"""Shared fixtures: tenants with API clients, and real receivers on 127.0.0.1."""

import glob
import os

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from callbacks.services.tenants import tenant_create
from tests.receivers import Receiver


@pytest.fixture
def new_tenant(db):
    """A tenant with its API key and signing secret (the values shown once at creation)."""
    return tenant_create(name="acme")


@pytest.fixture
def tenant(new_tenant):
    return new_tenant.tenant


@pytest.fixture
def api(new_tenant):
    """An API client authenticated as `tenant`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {new_tenant.api_key}")
    return client


@pytest.fixture
def other_api(db):
    """An API client of a second tenant, for isolation tests."""
    other = tenant_create(name="globex")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other.api_key}")
    client.tenant = other.tenant
    return client


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


def pytest_sessionfinish(session, exitstatus):
    """Remove this run's SQLite test database files (see taskcenter/test_settings.py)."""
    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if name and settings.IS_SQLITE:
        for path in glob.glob(f"{name}*"):
            os.remove(path)


@pytest.fixture(autouse=True)
def _no_failed_authentications():
    """Every test client comes from 127.0.0.1: one test's wrong keys must not throttle the next test."""
    from callbacks.api.auth import GUARD

    GUARD.forget("127.0.0.1")
    yield
    GUARD.forget("127.0.0.1")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The console caches its figures and filter choices briefly: each test starts from an empty cache."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_runtime_settings():
    """Run-time settings are cached per process; each test starts from the configured ones."""
    from callbacks import conf

    conf.reset_cache()
    yield
    conf.reset_cache()
