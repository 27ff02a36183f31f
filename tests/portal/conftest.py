"""Portal fixtures: two tenants with a bit of everything, and clients signed in to one tenant's portal
the way a person is, by opening a link and pressing the button."""

import pytest
from django.test import Client
from django.urls import reverse

from callbacks.models import CallbackTask
from portal.services import portal_link_create
from tests.portal.data import World, populate


@pytest.fixture
def a(db) -> World:
    return populate("acme", "acme")


@pytest.fixture
def b(db) -> World:
    return populate("globex", "globex")


def signed_in(tenant, *, enforce_csrf=False, **link_kwargs) -> Client:
    """A client that opened a fresh link to the tenant's portal and pressed "Sign in"."""
    client = Client(enforce_csrf_checks=enforce_csrf)
    link, token = portal_link_create(tenant=tenant, actor="fixture", **link_kwargs)
    url = reverse("portal:signin", args=[token])
    assert client.get(url).status_code == 200
    response = client.post(url, {"csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert response.status_code == 302, response.content[:500]
    client.link, client.token = link, token
    return client


@pytest.fixture
def portal(a) -> Client:
    """A's portal session."""
    return signed_in(a.tenant)


def snapshot(world: World) -> dict:
    """What a portal request must never change of another tenant's rows."""
    world.schedule.refresh_from_db()
    return {
        "tasks": sorted(
            CallbackTask.objects.filter(tenant=world.tenant).values_list(
                "id", "status", "attempts", "updated_at"
            )
        ),
        "schedule": (world.schedule.paused, world.schedule.updated_at, world.schedule.next_fire_at),
        "gone": list(world.tenant.gone_urls.values_list("id", flat=True)),
        "whitelist": list(world.tenant.whitelist.values_list("id", "enabled")),
    }
