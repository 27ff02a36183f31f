"""Test data of the portal's tests: a tenant with a bit of everything, made as the service makes it."""

from dataclasses import dataclass, field

from callbacks.domain.vocabulary import ActorType, TaskStatus
from callbacks.models import CallbackTask, TaskExecution
from callbacks.services.gone import gone_url_mark
from callbacks.services.schedules import schedule_create
from callbacks.services.tenants import tenant_create
from callbacks.services.whitelist import whitelist_entry_create
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
            good = status == TaskStatus.SUCCEEDED
            execution = make_execution(
                task=task,
                attempt=number,
                outcome="success" if good else "http_5xx",
                status_code=200 if good else 503,
            )
            # What a receiver might answer: secrets the portal must mask as the admin does.
            TaskExecution.objects.filter(pk=execution.pk).update(
                response_body=f"busy, retry with Bearer {name}-reply-secret",
                response_headers={"Content-Type": "text/plain", "Set-Cookie": f"sid={name}-cookie-secret"},
            )
        if attempts:
            # As the worker leaves a task after its last attempt.
            last = ("success", 200) if status == TaskStatus.SUCCEEDED else ("http_5xx", 503)
            CallbackTask.objects.filter(pk=task.pk).update(last_outcome=last[0], last_status_code=last[1])
            task.refresh_from_db()
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
