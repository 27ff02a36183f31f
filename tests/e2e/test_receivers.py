"""Hostile receivers against the real dispatcher and cluster: whatever a receiver puts in its answer, a
delivered callback is recorded once, with its status, and never sent again."""

from collections import Counter

import pytest

from callbacks.models import CallbackTask, TaskExecution, TaskStatus
from tests.e2e.helpers import create_callbacks, unfinished
from tests.processes import wait_until
from tests.receivers import Reply

pytestmark = pytest.mark.e2e


def test_answers_no_parser_expects_are_recorded_once_with_their_status(api, receiver, service):
    """A 200 with "Retry-After: ²" used to raise in the sender thread: the task stayed running until its
    lease ran out, was taken for a worker that vanished, sent again each time and ended dead. A head of
    3.6 MB used to be stored whole. A NUL in a redirect's Location made the error text unstorable."""

    def respond(received):
        if received.path == "/digit":
            return Reply(status=200, headers={"Retry-After": "²"})
        if received.path == "/nul":
            return Reply(status=302, headers={"Location": "/a\x00b"})
        return Reply(status=200, headers={f"X-Filler-{index}": "a" * 60 * 1024 for index in range(60)})

    receiver.respond = respond
    service("dispatcher", ["run_dispatcher"], CALLBACKS_RUNNING_LEASE_MARGIN_SECONDS=1)
    service("workers", ["qcluster"], CALLBACKS_RUNNING_LEASE_MARGIN_SECONDS=1)
    fields = {"max_retries": 2, "backoff": {"initial_seconds": 0.1}, "timeout": {"total_seconds": 2}}
    digit = create_callbacks(api, 5, receiver.url + "/digit", **fields)
    huge = create_callbacks(api, 5, receiver.url + "/huge", **fields)
    nul = create_callbacks(api, 5, receiver.url + "/nul", **fields)

    wait_until(lambda: unfinished() == 0, timeout=90, message="every callback to end")

    statuses = Counter(CallbackTask.objects.filter(pk__in=digit + huge).values_list("status", flat=True))
    assert statuses == {TaskStatus.SUCCEEDED: 10}
    assert len(receiver.received) == 15
    # A NUL in a Location used to make every later record of its worker process fail.
    assert Counter(CallbackTask.objects.filter(pk__in=nul).values_list("status", flat=True)) == {
        TaskStatus.FAILED: 5
    }
    assert Counter(TaskExecution.objects.filter(task_id__in=nul).values_list("outcome", "attempt")) == {
        ("http_3xx", 1): 5
    }
    executions = TaskExecution.objects.filter(task_id__in=digit + huge)
    assert Counter(executions.values_list("outcome", "status_code", "attempt")) == {("success", 200, 1): 10}
    for headers in executions.filter(task_id__in=huge).values_list("response_headers", flat=True):
        assert sum(len(name) + len(value) for name, value in headers.items()) <= 32 * 1024
