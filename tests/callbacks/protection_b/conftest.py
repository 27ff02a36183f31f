"""Fixtures for the protection tests: whitelist caches forgotten between tests, enforcement switched on."""

import pytest

from callbacks import whitelist
from callbacks.services.whitelist import whitelist_enforce_set, whitelist_entry_create


@pytest.fixture(autouse=True)
def _forget_whitelists():
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
    from tests.callbacks.delivery.conftest import SilentListener

    listener = SilentListener()
    yield listener
    listener.close()
