"""410 Gone across real processes: the API, run_dispatcher, qcluster and a receiver that answers 410.

After its first 410 no request reaches that URL again: later callbacks to it end `failed`, outcome
`gone`, unsent, the tenant is told once, and once the tenant clears the mark they are delivered again.
"""

import json
from collections import Counter

import pytest

from callbacks.models import CallbackTask, TaskStatus
from callbacks.services.notifications import NOTIFICATION_PREFIX
from tests.e2e.helpers import create_callbacks, unfinished
from tests.processes import wait_until
from tests.receivers import Receiver, Reply

pytestmark = pytest.mark.e2e


def test_a_410_stops_callbacks_to_that_url_until_the_tenant_clears_it(api, tenant, receiver, service):
    answer = {"/hook": 410}
    receiver.respond = lambda request: Reply(status=answer.get(request.path, 200))
    with Receiver() as notified:
        tenant.notification_url = notified.url + "/events"
        tenant.save(update_fields=["notification_url"])
        service("dispatcher", ["run_dispatcher"])
        service("workers", ["qcluster"])

        [first] = create_callbacks(api, 1, receiver.url + "/hook", max_retries=3)
        wait_until(lambda: unfinished() == 0, timeout=60, message="the first callback and its notification")
        assert CallbackTask.objects.filter(pk=first).values_list("status", "last_outcome").get() == (
            TaskStatus.FAILED,
            "gone",
        )
        [gone] = api.get("/api/v1/gone/").json()["results"]
        assert gone["url"] == receiver.url + "/hook" and gone["task_id"] == first

        later = create_callbacks(api, 20, receiver.url + "/hook", max_retries=3)
        elsewhere = create_callbacks(api, 5, receiver.url + "/other")
        wait_until(lambda: unfinished() == 0, timeout=60, message="the later callbacks to end")

        assert Counter(r.path for r in receiver.received) == {"/hook": 1, "/other": 5}
        assert Counter(
            CallbackTask.objects.filter(pk__in=later).values_list(
                "status", "last_outcome", "last_status_code"
            )
        ) == {(TaskStatus.FAILED, "gone", None): 20}
        assert set(CallbackTask.objects.filter(pk__in=elsewhere).values_list("status", flat=True)) == {
            TaskStatus.SUCCEEDED
        }
        events = [json.loads(r.body) for r in notified.received]
        assert [(event["type"], event["data"]["url"]) for event in events] == [
            ("url.gone", receiver.url + "/hook")
        ]
        assert CallbackTask.objects.filter(business_id__startswith=NOTIFICATION_PREFIX).count() == 1

        answer.clear()  # the receiver is back
        assert api.delete(f"/api/v1/gone/{gone['id']}/").status_code == 204
        again = create_callbacks(api, 10, receiver.url + "/hook")
        wait_until(lambda: unfinished() == 0, timeout=60, message="the callbacks after clearing")

    assert set(CallbackTask.objects.filter(pk__in=again).values_list("status", flat=True)) == {
        TaskStatus.SUCCEEDED
    }
    assert Counter(r.path for r in receiver.received) == {"/hook": 11, "/other": 5}
