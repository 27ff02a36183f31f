"""Fixtures for the callbacks tests: whitelist caches forgotten between tests, a tenant enforcing its
whitelist, and a listener that must stay silent."""

import pytest

from callbacks import whitelist
from callbacks.services.whitelist import whitelist_enforce_set, whitelist_entry_create
from tests.receivers import SilentListener


@pytest.fixture(autouse=True)
def _forget_whitelists():
    """The process-wide whitelist cache (callbacks/whitelist.py) starts and ends every test empty."""
    whitelist.forget()
    yield
    whitelist.forget()


@pytest.fixture
def enforcing(tenant):
    """`tenant`, enforcing its whitelist; add(host, ...) adds an entry."""

    def add(host, **fields):
        return whitelist_entry_create(tenant=tenant, host=host, **fields, actor_type="user", actor="test")

    whitelist_enforce_set(tenant=tenant, enforce=True, actor_type="user", actor="test")
    tenant.refresh_from_db()
    tenant.add = add
    return tenant


@pytest.fixture
def silent_listener():
    """A SilentListener on 127.0.0.1, closed at the end."""
    listener = SilentListener()
    yield listener
    listener.close()
