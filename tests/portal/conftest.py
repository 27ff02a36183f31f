"""Portal fixtures: two tenants with a bit of everything, and clients signed in to one tenant's portal
the way a person is, by opening a link and pressing the button."""

from dataclasses import dataclass, field

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from callbacks.domain.vocabulary import ActorType, TaskStatus
from callbacks.models import CallbackTask, TaskExecution
from callbacks.services.gone import gone_url_mark
from callbacks.services.schedules import schedule_create
from callbacks.services.tenants import tenant_create
from callbacks.services.whitelist import whitelist_entry_create
from portal.services import portal_link_create
from tests.factories import make_execution, make_task_in_state


@dataclass
class World:
    """One tenant's rows, made as the service makes them."""

    tenant: object
    tasks: dict = field(default_factory=dict)  # status -> task
    schedule: object = None
    entry: object = None
    gone: object = None


def populate(name: str, host: str) -> World:
    world = World(tenant=tenant_create(name=name).tenant)
    for status, attempts in (
        (TaskStatus.DEAD, 4),
        (TaskStatus.RETRYING, 1),
        (TaskStatus.SCHEDULED, 0),
        (TaskStatus.SUCCEEDED, 1),
    ):
        task = make_task_in_state(
            tenant=world.tenant,
            status=status,
            attempts=attempts,
            url=f"http://127.0.0.1:9/{host}/{status}",
            business_id=f"{name}-{status}",
            headers={"Authorization": f"Bearer {name}-header-secret", "X-Order": "17"},
        )
        for number in range(1, attempts + 1):
            execution = make_execution(task=task, attempt=number)
            # What a receiver might answer: secrets the portal must mask as the admin does.
            TaskExecution.objects.filter(pk=execution.pk).update(
                response_body=f"busy, retry with Bearer {name}-reply-secret",
                response_headers={"Content-Type": "text/plain", "Set-Cookie": f"sid={name}-cookie-secret"},
            )
        world.tasks[status] = task
    world.schedule = schedule_create(
        tenant=world.tenant,
        data={
            "name": f"{name}-nightly",
            "cron": "0 3 * * *",
            "task_template": {
                "url": f"http://127.0.0.1:9/{host}/nightly",
                "headers": {"X-Api-Key": "sched-secret"},
            },
        },
        actor_type=ActorType.TENANT,
        actor="fixture",
    )
    world.entry = whitelist_entry_create(
        tenant=world.tenant,
        host=f"{host}.example.com",
        note=f"{name}'s receiver",
        actor_type=ActorType.USER,
        actor="fixture",
    )
    world.gone = gone_url_mark(
        tenant_id=world.tenant.pk,
        url=f"https://{host}.example.com/gone",
        task_id=world.tasks[TaskStatus.DEAD].pk,
        notify=False,
    )
    return world


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


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
