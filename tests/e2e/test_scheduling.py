"""End to end: delays, priorities, cron schedules, queues, ordering keys and cancellation, through real
run_dispatcher and qcluster processes to a real receiver on 127.0.0.1."""

from collections import Counter
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from callbacks.models import CallbackSchedule, CallbackTask, TaskExecution, TaskStatus
from callbacks.services.queues import queue_create, queue_pause, queue_resume
from tests.e2e.helpers import create_callbacks, unfinished, wait_for_cluster
from tests.processes import wait_until
from tests.receivers import Reply

pytestmark = [pytest.mark.e2e]


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def task_ids(received) -> list[str]:
    return [r.headers["x-callback-task-id"] for r in received]


def create_one(api, url, **fields) -> dict:
    response = api.post("/api/v1/callbacks/", {"url": url, **fields}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def warm_up(api, receiver):
    """One callback through the whole pipeline: every process is up and connected."""
    create_one(api, receiver.url + "/warm-up")
    receiver.wait_for(1, timeout=60)
    receiver.received.clear()


def marker(api, receiver, *, at: datetime) -> str:
    """A callback due at `at`; once it is received, the dispatcher has run past `at`."""
    return create_one(api, receiver.url + "/marker", run_at=at.isoformat())["id"]


def wait_received(receiver, task_id: str, timeout=60):
    wait_until(lambda: task_id in task_ids(receiver.received), timeout=timeout, message=f"{task_id} received")


def test_delayed_callbacks_go_out_on_time(api, receiver, service):
    # PostgreSQL: the longest poll allowed, so only the wake-up at creation can make them punctual.
    # SQLite has no NOTIFY: there the poll does it.
    poll = 10.0 if connection.vendor == "postgresql" else 0.1
    service("dispatcher", ["run_dispatcher"], CALLBACKS_DISPATCH_POLL_SECONDS=poll)
    service("workers", ["qcluster"])
    warm_up(api, receiver)

    due = {}

    def create_delayed(seconds):
        run_at = timezone.now() + timedelta(seconds=seconds)
        due[create_one(api, receiver.url, run_at=run_at.isoformat())["id"]] = run_at.timestamp()

    # Due 1.5 to 5 s after their creation, in mixed order: nothing else wakes the dispatcher meanwhile.
    for seconds in (3.0, 5.0, 1.5, 4.0, 2.5, 4.5, 2.0, 3.5):
        create_delayed(seconds)
    receiver.wait_for(8, timeout=60)
    create_delayed(1.0)
    receiver.wait_for(9, timeout=60)

    lateness = {
        task_id: r.at - due[task_id]
        for task_id, r in zip(task_ids(receiver.received), receiver.received, strict=True)
    }
    assert set(lateness) == set(due)
    early = {task_id: late for task_id, late in lateness.items() if late < 0}
    assert not early, f"sent before their time: {early}"
    # Each creation wakes the dispatcher, which then sleeps exactly to the next due time.
    late = {task_id: late for task_id, late in lateness.items() if late > 1.5}
    assert not late, f"sent more than 1.5 s late: {late}"
    assert task_ids(receiver.received) == sorted(due, key=due.get)


def test_priorities_reorder_a_backlog(api, receiver, service):
    priorities = [1, 5, 9, 3, 9, 0, 7, 5, 2, 8, 4, 6, 1, 9, 3, 7, 0, 8, 2, 6]
    created = [
        (create_one(api, receiver.url, priority=priority)["id"], priority, n)
        for n, priority in enumerate(priorities)
    ]
    # One worker process sending one at a time: the receiver sees the order the backlog drains in.
    service("dispatcher", ["run_dispatcher"])
    service("workers", ["qcluster"], CALLBACKS_WORKER_PROCESSES=1, CALLBACKS_CONCURRENCY=1)
    receiver.wait_for(len(created), timeout=60)

    expected = [task_id for task_id, _p, _n in sorted(created, key=lambda item: (-item[1], item[2]))]
    assert task_ids(receiver.received) == expected


def test_a_seconds_cron_schedule_fires_every_fire_once_and_pauses_and_resumes(api, receiver, service):
    service("dispatcher", ["run_dispatcher"])
    service("workers", ["qcluster"])
    warm_up(api, receiver)

    created = api.post(
        "/api/v1/schedules/",
        {
            "name": "every-2s",
            "cron": "*/2 * * * * *",
            "timezone": "Europe/Berlin",
            "task_template": {"url": receiver.url + "/cron", "body": {"job": "tick"}},
        },
        format="json",
    ).json()
    first_fire = parse(created["next_fire_at"])
    receiver.wait_for(4, timeout=30)  # ~7 s: the fires at +0, +2, +4, +6 s
    paused = api.post(f"/api/v1/schedules/{created['id']}/pause/").json()
    assert paused["paused"] is True
    paused_at = timezone.now()
    # Past the next fire time the schedule would have had, the dispatcher has stepped: nothing more.
    wait_received(receiver, marker(api, receiver, at=paused_at + timedelta(seconds=2.5)))

    fires = sorted(CallbackTask.objects.filter(schedule_id=created["id"]).values_list("run_at", flat=True))
    expected = [first_fire + timedelta(seconds=2 * n) for n in range(len(fires))]
    assert fires == expected  # every 2 s, none missing, none twice
    assert 4 <= len(fires) and fires[-1] <= paused_at
    cron_received = [r for r in receiver.received if r.path == "/cron"]
    assert len(cron_received) == len(fires)
    assert len(set(task_ids(cron_received))) == len(fires)

    resumed = api.post(f"/api/v1/schedules/{created['id']}/resume/").json()
    assert parse(resumed["next_fire_at"]) > paused_at
    wait_until(
        lambda: len([r for r in receiver.received if r.path == "/cron"]) > len(fires),
        timeout=30,
        message="a fire after resuming",
    )
    later = CallbackTask.objects.filter(schedule_id=created["id"], run_at__gt=paused_at).order_by("run_at")
    assert later.first().run_at >= parse(resumed["next_fire_at"])


def test_two_dispatchers_never_fire_a_schedule_twice(api, receiver, service):
    first = service("dispatcher-1", ["run_dispatcher"], CALLBACKS_STANDBY_POLL_SECONDS=0.2)
    wait_until(lambda: "is the leader" in first.log(), timeout=30, message="the first dispatcher to lead")
    second = service("dispatcher-2", ["run_dispatcher"], CALLBACKS_STANDBY_POLL_SECONDS=0.2)
    service("workers", ["qcluster"])
    warm_up(api, receiver)

    schedule_id = api.post(
        "/api/v1/schedules/",
        {"name": "every-s", "cron": "* * * * * *", "task_template": {"url": receiver.url + "/cron"}},
        format="json",
    ).json()["id"]
    receiver.wait_for(3, timeout=30)
    first.kill_group()  # the leader dies mid-schedule; the standby takes over
    wait_until(lambda: "is the leader" in second.log(), timeout=30, message="the standby to take over")
    before = CallbackTask.objects.filter(schedule_id=schedule_id).count()
    wait_until(
        lambda: CallbackTask.objects.filter(schedule_id=schedule_id).count() >= before + 3,
        timeout=30,
        message="fires by the new leader",
    )
    CallbackSchedule.objects.filter(pk=schedule_id).update(paused=True)
    wait_until(lambda: unfinished() == 0, timeout=60, message="all fires delivered")

    fires = list(CallbackTask.objects.filter(schedule_id=schedule_id).values_list("run_at", flat=True))
    assert len(fires) == len(set(fires)), "a fire time made two tasks"
    assert all(fire.microsecond == 0 for fire in fires)
    received = Counter(task_ids(r for r in receiver.received if r.path == "/cron"))
    assert len(received) == len(fires) and set(received.values()) == {1}


def test_queues_route_to_their_cluster_and_pause_keeps_tasks(api, receiver, service):
    queue_create(name="bulk", actor_type="user", actor="test")
    service("dispatcher", ["run_dispatcher"])
    service("default-workers", ["qcluster"])
    wait_for_cluster()
    bulk = create_callbacks(api, 5, receiver.url + "/bulk", queue="bulk")
    default = create_callbacks(api, 5, receiver.url + "/default")
    receiver.wait_for(5, timeout=60)
    # No cluster serves "bulk" yet: its tasks wait, due, and are not claimed into the broker.
    assert set(CallbackTask.objects.filter(id__in=bulk).values_list("status", flat=True)) == {"scheduled"}
    assert set(task_ids(receiver.received)) == set(default)

    service("bulk-workers", ["qcluster"], Q_CLUSTER_NAME="bulk", CALLBACKS_CONCURRENCY=2)
    receiver.wait_for(10, timeout=60)
    assert {r.path for r in receiver.received[5:]} == {"/bulk"}

    queue_pause(name="bulk", actor_type="user", actor="test")
    waiting = create_callbacks(api, 3, receiver.url + "/bulk-later", queue="bulk")
    wait_received(receiver, marker(api, receiver, at=timezone.now() + timedelta(seconds=0.5)))
    assert set(CallbackTask.objects.filter(id__in=waiting).values_list("status", flat=True)) == {"scheduled"}

    queue_resume(name="bulk", actor_type="user", actor="test")
    wait_until(lambda: unfinished() == 0, timeout=60, message="the paused queue's tasks to go after resume")
    assert sum(r.path == "/bulk-later" for r in receiver.received) == 3


def test_an_ordering_key_delivers_one_at_a_time_in_order_through_retries(api, receiver, service):
    service("dispatcher", ["run_dispatcher"])
    service("workers", ["qcluster"])
    attempts = Counter()

    def respond(request):
        task_id = request.headers["x-callback-task-id"]
        attempts[task_id] += 1
        first_task = task_id == keyed[0]
        return Reply(status=503 if first_task and attempts[task_id] == 1 else 200, delay=0.05)

    receiver.respond = respond
    keyed = []
    keyed.extend(
        create_callbacks(
            api, 5, receiver.url + "/keyed", ordering_key="order-42", backoff={"initial_seconds": 1.5}
        )
    )
    others = create_callbacks(api, 5, receiver.url + "/other")
    wait_until(lambda: unfinished() == 0, timeout=60, message="all callbacks final")

    keyed_seen = [r for r in receiver.received if r.path == "/keyed"]
    assert task_ids(keyed_seen) == [keyed[0], *keyed]  # the first twice (503, then 200), then in order
    for earlier, later in zip(keyed_seen, keyed_seen[1:], strict=False):
        assert later.at >= earlier.at + 0.05  # the next only after the previous answered
    assert {
        str(t) for t in CallbackTask.objects.filter(status="succeeded").values_list("id", flat=True)
    } >= set(keyed + others)
    # Other callbacks did not wait for the key: the first of them went before the key's retry.
    retry_at = keyed_seen[1].at
    assert min(r.at for r in receiver.received if r.path == "/other") < retry_at


def test_cancelled_callbacks_are_never_sent(api, receiver, service):
    dispatcher = service("dispatcher", ["run_dispatcher"])
    receiver.respond = lambda request: Reply(status=503) if request.path == "/retrying" else Reply(delay=0.0)

    # Claimed and handed to the broker, with no worker running yet: cancelled while queued.
    queued = create_one(api, receiver.url + "/queued")["id"]
    wait_until(
        lambda: CallbackTask.objects.get(id=queued).status == TaskStatus.QUEUED,
        timeout=30,
        message="the task claimed",
    )
    assert dispatcher.proc.poll() is None
    assert api.post(f"/api/v1/callbacks/{queued}/cancel/").json()["status"] == "cancelled"
    delayed = create_one(api, receiver.url + "/delayed", delay_seconds=2)["id"]
    assert api.post(f"/api/v1/callbacks/{delayed}/cancel/").json()["status"] == "cancelled"
    service("workers", ["qcluster"])
    retrying = create_one(api, receiver.url + "/retrying", max_retries=3, backoff={"initial_seconds": 2})[
        "id"
    ]
    wait_until(
        lambda: CallbackTask.objects.get(id=retrying).status == TaskStatus.RETRYING,
        timeout=30,
        message="the first attempt failed",
    )
    assert api.post(f"/api/v1/callbacks/{retrying}/cancel/").json()["status"] == "cancelled"
    assert api.post(f"/api/v1/callbacks/{retrying}/cancel/").status_code == 200  # idempotent
    retry_due = CallbackTask.objects.get(id=retrying).next_attempt_at

    # Past every time the cancelled ones would have gone out, a callback made after them arrives.
    wait_received(receiver, marker(api, receiver, at=max(retry_due, timezone.now()) + timedelta(seconds=1)))

    assert [r.path for r in receiver.received] == ["/retrying", "/marker"]
    assert not TaskExecution.objects.filter(task_id__in=[queued, delayed]).exists()
    assert TaskExecution.objects.filter(task_id=retrying).count() == 1
    for task_id in (queued, delayed, retrying):
        assert CallbackTask.objects.get(id=task_id).status == TaskStatus.CANCELLED
        assert api.post(f"/api/v1/callbacks/{task_id}/cancel/").status_code == 200
    done = api.get(f"/api/v1/callbacks/{task_ids(receiver.received)[-1]}/").json()
    assert done["status"] == "succeeded"
    assert api.post(f"/api/v1/callbacks/{done['id']}/cancel/").status_code == 409


def test_cancelling_a_running_callback_stops_its_retries(api, receiver, service):
    service("dispatcher", ["run_dispatcher"])
    service("workers", ["qcluster"])
    receiver.respond = Reply(status=503, delay=1.0)

    task_id = create_one(api, receiver.url, max_retries=3, backoff={"initial_seconds": 0.2})["id"]
    receiver.wait_for(1, timeout=60)
    assert CallbackTask.objects.get(id=task_id).status == TaskStatus.RUNNING
    assert api.post(f"/api/v1/callbacks/{task_id}/cancel/").json()["status"] == "cancelled"

    wait_until(
        lambda: TaskExecution.objects.filter(task_id=task_id).exists(),
        timeout=30,
        message="the attempt recorded",
    )
    wait_received(receiver, marker(api, receiver, at=timezone.now() + timedelta(seconds=1)))
    assert task_ids(receiver.received).count(task_id) == 1
    assert CallbackTask.objects.get(id=task_id).status == TaskStatus.CANCELLED
