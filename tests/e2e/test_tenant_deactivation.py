"""A deactivated tenant's callbacks are held, not sent and not lost, while another tenant's go; reactivated,
they go too. Real dispatcher and worker processes, a real receiver."""

import pytest

from callbacks.models import CallbackTask, TaskStatus
from callbacks.services.tenants import tenant_deactivate, tenant_reactivate
from tests.e2e.helpers import create_callbacks
from tests.processes import wait_until

pytestmark = pytest.mark.e2e


def _statuses(ids):
    return set(CallbackTask.objects.filter(pk__in=ids).values_list("status", flat=True))


def test_a_deactivated_tenants_callbacks_wait_until_it_is_reactivated(
    api, tenant, other_api, receiver, service
):
    # The deactivated tenant's callbacks come first in claim order (priority 9, created first).
    held = create_callbacks(api, 10, receiver.url + "/held", priority=9)
    going = create_callbacks(other_api, 10, receiver.url + "/going")
    tenant_deactivate(tenant=tenant, actor_type="user", actor="test")
    service("dispatcher", ["run_dispatcher"])
    service("workers", ["qcluster"])

    wait_until(
        lambda: _statuses(going) == {TaskStatus.SUCCEEDED}, timeout=60, message="the other tenant's callbacks"
    )
    assert {request.path for request in receiver.received} == {"/going"}
    assert _statuses(held) == {TaskStatus.SCHEDULED}

    tenant_reactivate(tenant=tenant, actor_type="user", actor="test")
    wait_until(lambda: _statuses(held) == {TaskStatus.SUCCEEDED}, timeout=60, message="the held callbacks")
    paths = [request.path for request in receiver.received]
    assert sorted(paths) == ["/going"] * 10 + ["/held"] * 10  # each once
