"""The whitelist across processes: a worker process that sent to a listed target stops within its cache's TTL
once the entry is removed through the API, and the refused callbacks end failed, never retried."""

from collections import Counter

import pytest

from callbacks.models import CallbackTask, TaskExecution, TaskStatus
from callbacks.services.whitelist import whitelist_enforce_set, whitelist_entry_create
from tests.e2e.helpers import create_callbacks, unfinished
from tests.processes import wait_until

pytestmark = pytest.mark.e2e


def test_a_removed_entry_stops_a_running_worker(api, tenant, receiver, service):
    whitelist_enforce_set(tenant=tenant, enforce=True, actor_type="user", actor="test")
    # Widening an enforced whitelist is an operator's act; the tenant's key may narrow it.
    entry = whitelist_entry_create(
        tenant=tenant,
        host="127.0.0.1",
        port=receiver.port,
        path_prefix="/ok",
        actor_type="user",
        actor="test",
    )
    service("dispatcher", ["run_dispatcher"])
    service("workers", ["qcluster"], CALLBACKS_WHITELIST_CACHE_SECONDS=0.5)

    sent = create_callbacks(api, 20, receiver.url + "/ok/now")
    wait_until(lambda: unfinished() == 0, timeout=60, message="the first callbacks to be delivered")
    # Accepted while listed, due once the entry is gone and the workers' cached lists have expired.
    later = create_callbacks(api, 20, receiver.url + "/ok/later", delay_seconds=3, max_retries=3)
    assert api.delete(f"/api/v1/whitelist/{entry.pk}/").status_code == 204
    wait_until(lambda: unfinished() == 0, timeout=60, message="the delayed callbacks to end")

    assert sorted({r.path for r in receiver.received}) == ["/ok/now"]
    assert len(receiver.received) == len(sent)
    statuses = Counter(CallbackTask.objects.filter(pk__in=later).values_list("status", flat=True))
    assert statuses == {TaskStatus.FAILED: 20}
    outcomes = Counter(TaskExecution.objects.filter(task_id__in=later).values_list("outcome", "attempt"))
    assert outcomes == {("whitelist_denied", 1): 20}
