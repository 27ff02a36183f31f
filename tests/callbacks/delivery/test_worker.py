"""The worker in-process: real database, real receiver, the real thread pool and recorder."""

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from callbacks import queues
from callbacks.delivery import worker as worker_module
from callbacks.delivery.claim import lanes, leases
from callbacks.delivery.instruments import heartbeats
from callbacks.delivery.instruments.accounting import dispatch_lag_seconds
from callbacks.delivery.worker import DeliveryWorker, LaneRun, SenderShares
from callbacks.models import CallbackTask, GoneUrl, Lane, TaskEvent, TaskExecution, TaskStatus
from callbacks.services.gone import gone_url_clear
from callbacks.services.tasks import task_create
from callbacks.services.tenants import tenant_create
from tests.factories import make_task, make_tasks
from tests.processes import wait_until
from tests.receivers import Receiver, Reply


@pytest.fixture
def worker():
    worker = DeliveryWorker(concurrency=8, flush_seconds=0.01, name="test-worker")
    yield worker
    worker.shutdown(timeout=10)


def deliver_due(worker, *, now=None):
    """One dispatch round done by hand: claim what is due and let the worker send it."""
    claimed = 0
    for claim in leases.claim_due(limit=1000, now=now):
        claimed += worker.deliver_lane(claim.token, claim.task_ids)
    assert worker.wait_idle(timeout=30)
    return claimed


@pytest.mark.django_db(transaction=True)
def test_batch_is_delivered_and_every_attempt_recorded(tenant, receiver, worker):
    tasks = make_tasks(20, tenant=tenant, url=receiver.url + "/hook")

    assert deliver_due(worker) == 20

    assert len(receiver.received) == 20
    assert {r.headers["x-callback-task-id"] for r in receiver.received} == {str(t.id) for t in tasks}
    assert set(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}
    assert TaskExecution.objects.filter(outcome="success", attempt=1).count() == 20
    done = CallbackTask.objects.first()
    assert done.finished_at is not None and done.locked_by == "" and done.last_status_code == 200
    assert list(
        TaskEvent.objects.filter(task=done).order_by("at", "id").values_list("to_status", flat=True)
    ) == [
        "queued",
        "running",
        "succeeded",
    ]


@pytest.mark.django_db(transaction=True)
def test_server_error_is_retried_until_success(tenant, receiver, worker):
    receiver.respond = lambda req: Reply(status=503) if req.seq <= 2 else Reply(status=200)
    task = make_task(tenant=tenant, url=receiver.url, backoff_initial_seconds=0.01, backoff_max_seconds=0.02)

    for _ in range(3):
        deliver_due(worker, now=timezone.now() + timezone.timedelta(seconds=1))

    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED
    assert task.attempts == 3
    outcomes = list(
        TaskExecution.objects.filter(task=task).order_by("attempt").values_list("outcome", flat=True)
    )
    assert outcomes == ["http_5xx", "http_5xx", "success"]
    assert [r.headers["x-callback-attempt"] for r in receiver.received] == ["1", "2", "3"]
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1


@pytest.mark.django_db(transaction=True)
def test_a_task_cancelled_after_its_claim_is_never_sent(tenant, receiver, worker):
    keep, cancel = make_tasks(2, tenant=tenant, url=receiver.url)
    (claim,) = leases.claim_due(limit=10)
    CallbackTask.objects.filter(id=cancel.id).update(status=TaskStatus.CANCELLED)

    worker.deliver_lane(claim.token, claim.task_ids)
    assert worker.wait_idle(timeout=30)

    assert [r.headers["x-callback-task-id"] for r in receiver.received] == [str(keep.id)]
    assert CallbackTask.objects.get(id=cancel.id).status == TaskStatus.CANCELLED


@pytest.mark.django_db(transaction=True)
def test_cancel_while_running_is_kept_over_the_attempts_result(tenant, receiver, worker):
    receiver.respond = Reply(status=500, delay=0.5)
    task = make_task(tenant=tenant, url=receiver.url)
    (claim,) = leases.claim_due(limit=10)

    worker.deliver_lane(claim.token, claim.task_ids)
    receiver.wait_for(1)
    CallbackTask.objects.filter(id=task.id).update(status=TaskStatus.CANCELLED)
    assert worker.wait_idle(timeout=30)

    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED  # no retry will follow
    assert TaskExecution.objects.get(task=task).outcome == "http_5xx"  # the attempt is still on record


@pytest.mark.django_db(transaction=True)
def test_concurrency_is_bounded_per_process(tenant, receiver):
    receiver.respond = Reply(delay=0.2)
    worker = DeliveryWorker(concurrency=3, flush_seconds=0.01, name="narrow")
    try:
        make_tasks(12, tenant=tenant, url=receiver.url)
        deliver_due(worker)
    finally:
        worker.shutdown(timeout=10)
    assert len(receiver.received) == 12
    assert receiver.max_in_flight == 3


def test_a_paced_lane_starts_no_more_than_its_token_bucket_holds():
    lane = LaneRun("token", [], rate=10.0)
    lane.width, start = 5, lane.started

    assert lane.tokens(start) == 0.0  # the leader's claim paid for its first tasks
    assert lane.due_in(start) == pytest.approx(0.1)  # nothing in flight, but no token yet
    assert lane.tokens(start + 0.35) == pytest.approx(3.5)
    lane.spend(3, start + 0.35)
    assert lane.due_in(start + 0.35) == pytest.approx(0.05)
    assert lane.tokens(start + 100) == 10.0  # a bucket holds one second's worth
    assert LaneRun("token", [], rate=None).tokens(start) == float("inf")


def test_a_lane_whose_time_is_up_waits_for_its_sends_before_it_narrows(callbacks_settings):
    callbacks_settings(LANE_SECONDS=5.0)
    lane = LaneRun("token", [])
    lane.width, lane.in_flight = 10, 4
    up = lane.started + 5.0
    assert lane.due_in(up - 0.1) == 0.0  # before its time: half free, refilled at once

    assert lane.due_in(up + 0.01) == pytest.approx(worker_module.ENDING_PAUSE - 0.01)  # sends out: it waits
    lane.in_flight = 0
    assert lane.due_in(up + 0.01) == 0.0  # the last ended: it narrows (to nothing) at once
    lane.in_flight = 4
    assert lane.due_in(up + worker_module.ENDING_PAUSE) == 0.0  # the pause is over: to what is out


def test_a_lane_whose_time_is_up_wants_no_sender_slots(callbacks_settings):
    """Its tenant does not count as waiting for slots: another tenant may take every free one."""
    callbacks_settings(LANE_SECONDS=5.0)
    ending, other = LaneRun("a", [], tenant_id="t1"), LaneRun("b", [], tenant_id="t2")
    ending.width, ending.in_flight = 10, 4
    other.width = 10
    assert SenderShares([ending, other], limit=10, used=4).room("t2") == 5  # t1 may refill: t2 has its share

    ending.started -= 6.0  # its time is up
    assert SenderShares([ending, other], limit=10, used=4).room("t2") == 6  # every free slot


def test_a_paced_lane_whose_first_tasks_went_out_late_has_no_tokens_of_the_wait():
    lane = LaneRun("token", ["a", "b"], rate=10.0)
    late = lane.started + 0.4  # its first tasks waited for sender threads
    assert lane.tokens(late) == pytest.approx(4.0)

    lane.first_started(late)

    assert lane.tokens(late) == 0.0  # the claim paid for the burst; the rate counts from it
    assert lane.tokens(late + 0.2) == pytest.approx(2.0)


def lag_sum(client) -> float:
    """The dispatch lag histogram's sum as /metrics shows it (every process's, this one's included)."""
    for family in text_string_to_metric_families(client.get("/metrics").content.decode()):
        for sample in family.samples:
            if sample.name == "callbacks_dispatch_lag_seconds_sum":
                return sample.value
    return 0.0


def in_flight_shown(client, queue: str):
    """The in-flight gauge of `queue` as /metrics shows it; None when no process shows one."""
    for family in text_string_to_metric_families(client.get("/metrics").content.decode()):
        for sample in family.samples:
            if sample.name == "callbacks_in_flight" and sample.labels.get("queue") == queue:
                return sample.value
    return None


@pytest.fixture
def served_queue():
    """A queue of its own that a cluster serves, so that metrics label it by name."""
    queue = f"q{uuid.uuid4().hex[:10]}"
    heartbeats.beat(role=heartbeats.WORKER, name=f"test:{queue}", info={"queue": queue})
    queues.forget_operator_queues()
    yield queue
    queues.forget_operator_queues()


@pytest.mark.django_db(transaction=True)
def test_the_in_flight_gauge_counts_the_callbacks_under_way_then_falls_to_zero(
    tenant, receiver, worker, client, served_queue
):
    answer = threading.Event()
    receiver.respond = lambda received: Reply() if answer.wait(30) else Reply(status=500)
    make_tasks(5, tenant=tenant, url=receiver.url + "/hook", queue=served_queue)
    for claim in leases.claim_due(limit=100):
        worker.deliver_lane(claim.token, claim.task_ids)

    wait_until(lambda: receiver.in_flight == 5, timeout=10, message="five requests held by the receiver")
    wait_until(lambda: in_flight_shown(client, served_queue) == 5, timeout=10, message="the gauge at five")
    answer.set()
    assert worker.wait_idle(timeout=30)
    wait_until(lambda: in_flight_shown(client, served_queue) == 0, timeout=10, message="the gauge at zero")
    assert set(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}


@pytest.mark.django_db(transaction=True)
def test_a_run_at_long_past_adds_no_years_to_the_lag(tenant, receiver, worker, client):
    before = lag_sum(client)
    make_task(tenant=tenant, url=receiver.url + "/hook", run_at=timezone.now() - timedelta(days=5 * 365))

    assert deliver_due(worker) == 1

    assert 0 <= lag_sum(client) - before < 60  # the seconds it took here, not five years


def test_lag_counts_from_the_due_time_once_it_is_after_the_creation():
    created = timezone.now() - timedelta(minutes=10)
    retry = type("Task", (), {"created_at": created, "due_at": created + timedelta(minutes=9)})
    assert dispatch_lag_seconds(retry, sent_at=created + timedelta(minutes=10)) == 60.0
    early = type("Task", (), {"created_at": created, "due_at": created - timedelta(days=900)})
    assert dispatch_lag_seconds(early, sent_at=created + timedelta(seconds=3)) == 3.0


@pytest.mark.django_db(transaction=True)
def test_a_410_stops_every_later_callback_to_that_url_until_cleared(tenant, receiver, worker):
    receiver.respond = Reply(status=410)
    first = make_task(tenant=tenant, url=receiver.url + "/hook")
    deliver_due(worker)

    first.refresh_from_db()
    assert (first.status, first.last_outcome, first.last_status_code) == ("failed", "gone", 410)
    gone = GoneUrl.objects.get(tenant=tenant)
    assert gone.url == first.url and gone.task_id == first.id

    later = make_tasks(5, tenant=tenant, url=first.url)
    elsewhere = make_task(tenant=tenant, url=receiver.url + "/other")
    deliver_due(worker)

    assert [r.path for r in receiver.received] == ["/hook", "/other"]
    for task in later:
        task.refresh_from_db()
        assert (task.status, task.last_outcome, task.last_status_code) == ("failed", "gone", None)
        assert TaskExecution.objects.get(task=task).outcome == "gone"
    elsewhere.refresh_from_db()
    assert elsewhere.last_outcome == "gone" and elsewhere.last_status_code == 410  # it answered 410 too

    receiver.respond = Reply(status=200)
    gone_url_clear(gone=gone, actor_type="user", actor="ops")
    again = make_task(tenant=tenant, url=first.url)
    deliver_due(worker)

    again.refresh_from_db()
    assert again.status == "succeeded" and [r.path for r in receiver.received][-1] == "/hook"


@pytest.mark.django_db(transaction=True)
def test_a_burst_to_a_url_that_answers_410_reaches_it_once(tenant, receiver, settings):
    """The lane refills the moment the 410 is in, before the recorder has written the mark: the
    worker's own memory of the answer keeps the next tasks from being sent meanwhile."""
    settings.CALLBACKS = {**settings.CALLBACKS, "MAX_CONCURRENCY_PER_ORIGIN": 1}
    receiver.respond = Reply(status=410)
    burst = make_tasks(20, tenant=tenant, url=receiver.url + "/hook")
    worker = DeliveryWorker(concurrency=8, flush_seconds=0.5, name="test-worker")
    try:
        deliver_due(worker)
    finally:
        worker.shutdown(timeout=10)

    assert len(receiver.received) == 1
    statuses = {
        (task.status, task.last_outcome) for task in CallbackTask.objects.filter(pk__in=[t.pk for t in burst])
    }
    assert statuses == {("failed", "gone")}
    assert TaskExecution.objects.filter(status_code=410).count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_answer_with_a_non_ascii_retry_after_is_recorded_once(tenant, receiver, worker):
    """A 200 with "Retry-After: ²" used to raise in the sender thread: nothing was recorded, the task
    stayed running until its lease ran out and was then sent again as if its worker had vanished."""
    receiver.respond = Reply(status=200, headers={"Retry-After": "²"})
    task = make_task(tenant=tenant, url=receiver.url)

    deliver_due(worker)

    task.refresh_from_db()
    assert task.status == TaskStatus.SUCCEEDED
    assert list(TaskExecution.objects.filter(task=task).values_list("outcome", "status_code")) == [
        ("success", 200)
    ]
    assert len(receiver.received) == 1


@pytest.mark.django_db(transaction=True)
def test_a_send_that_raises_is_recorded_at_once(tenant, receiver, worker, monkeypatch):
    """Whatever escapes the executor is recorded by the worker, not lost in the thread pool."""
    from callbacks.delivery import executor

    def broken(task, *, attempt):
        raise RuntimeError("bug")

    monkeypatch.setattr(executor, "send_attempt", broken)
    task = make_task(tenant=tenant, url=receiver.url, max_retries=0)

    deliver_due(worker)

    task.refresh_from_db()
    assert task.status == TaskStatus.DEAD
    assert list(TaskExecution.objects.filter(task=task).values_list("outcome", "error")) == [
        ("error", "internal error: RuntimeError")
    ]


@pytest.mark.django_db(transaction=True)
def test_a_huge_response_head_is_stored_within_the_limit(tenant, receiver, worker, settings):
    """60 headers of 60 KiB (3.6 MB) used to be stored whole in the attempt's row."""
    settings.CALLBACKS = {**settings.CALLBACKS, "RESPONSE_HEADERS_LIMIT": 16 * 1024}
    receiver.respond = Reply(
        status=200, headers={f"X-Filler-{index}": "a" * 60 * 1024 for index in range(60)}
    )
    task = make_task(tenant=tenant, url=receiver.url)

    deliver_due(worker)

    execution = TaskExecution.objects.get(task=task)
    assert (execution.outcome, execution.status_code, execution.response_truncated) == ("success", 200, True)
    assert sum(len(name) + len(value) for name, value in execution.response_headers.items()) <= 16 * 1024
    assert CallbackTask.objects.get(id=task.id).status == TaskStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_a_nul_in_a_redirects_location_is_recorded(tenant, receiver, worker):
    """The error text quoted the Location with its NUL, which PostgreSQL text cannot hold: the worker's
    every recording failed from then on, and all its attempts came back by their leases, sent again."""
    receiver.respond = Reply(status=302, headers={"Location": "/a\x00b"})
    task = make_task(tenant=tenant, url=receiver.url)

    deliver_due(worker)

    execution = TaskExecution.objects.get(task=task)
    assert (execution.outcome, execution.status_code) == ("http_3xx", 302)
    assert execution.error == "HTTP 302 (redirect to /a\ufffdb not followed)"
    assert CallbackTask.objects.get(id=task.id).status == TaskStatus.FAILED


@pytest.mark.django_db(transaction=True)
def test_one_record_the_database_refuses_holds_up_no_other(tenant, receiver, monkeypatch):
    """Should an attempt's record hold what the database refuses (here: a NUL left in a header, as if the
    executor missed it), the other attempts of the flush are recorded all the same, and it is recorded
    without the response."""
    from callbacks.delivery import executor

    monkeypatch.setattr(executor, "_storable", lambda text: text)
    receiver.respond = lambda got: Reply(headers={"X-Bad": "a\x00"} if got.path == "/bad" else {})
    good = make_tasks(5, tenant=tenant, url=receiver.url + "/good")
    bad = make_task(tenant=tenant, url=receiver.url + "/bad")
    worker = DeliveryWorker(concurrency=8, flush_seconds=1.0, name="one-flush")  # the six in one flush
    try:
        deliver_due(worker)
    finally:
        worker.shutdown(timeout=10)

    assert len(receiver.received) == 6
    assert set(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}
    assert (
        TaskExecution.objects.filter(task__in=good, outcome="success").exclude(response_headers={}).count()
        == 5
    )
    stripped = TaskExecution.objects.get(task=bad)
    if connection.vendor != "postgresql":
        # SQLite stores a NUL as any other character: nothing is refused, the record is whole.
        assert (stripped.outcome, stripped.response_headers["X-Bad"]) == ("success", "a\x00")
        return
    assert (stripped.outcome, stripped.status_code, stripped.response_headers) == ("success", 200, {})
    assert "stored without the response" in stripped.error


@pytest.mark.django_db(transaction=True)
def test_a_tenant_filling_every_sender_slot_does_not_make_anothers_lane_wait(tenant, receiver):
    """One tenant's sends hang on a slow receiver and hold all of the process's slots; another
    tenant's lane, delivered to the same process, is sent at once, not after them."""
    other = tenant_create(name="globex").tenant
    release = threading.Event()
    # Held until released, well within the attempts' own timeout: their slots stay taken.
    receiver.respond = lambda request: (release.wait(60), Reply())[1]
    worker = DeliveryWorker(concurrency=4, flush_seconds=0.01, name="test-worker")
    try:
        make_tasks(8, tenant=tenant, url=receiver.url + "/slow", total_timeout_seconds=90)
        for claim in leases.claim_due(limit=1000):
            worker.deliver_lane(claim.token, claim.task_ids, claim.rate, claim.tenant_id)
        receiver.wait_for(4)  # every slot of the process holds one of the first tenant's sends
        with Receiver() as fast:
            theirs = make_task(tenant=other, url=fast.url)
            (claim,) = leases.claim_due(limit=1000)
            assert claim.task_ids == [theirs.id]
            worker.deliver_lane(claim.token, claim.task_ids, claim.rate, claim.tenant_id)

            fast.wait_for(1, timeout=10)
            assert not release.is_set() and len(receiver.received) == 4  # none of the first's ended
            release.set()
            assert worker.wait_idle(timeout=30)
        # The first tenant's sends beyond its share were not replaced while the other's lane waited,
        # and all of them went out in the end.
        assert CallbackTask.objects.filter(status=TaskStatus.SUCCEEDED).count() == 9
    finally:
        release.set()
        worker.shutdown(timeout=10)


def start_lane(worker, claim):
    worker.deliver_lane(claim.token, claim.task_ids, claim.rate, claim.tenant_id, claim.origin)


def succeeded(ids) -> int:
    return CallbackTask.objects.filter(id__in=ids, status=TaskStatus.SUCCEEDED).count()


@pytest.mark.django_db(transaction=True)
def test_a_lane_with_nothing_due_takes_the_next_callback_created_for_its_origin(
    tenant, receiver, worker, callbacks_settings
):
    """No dispatcher runs here: only the lane can send a callback created after its first ones. It does
    where creations wake it (PostgreSQL's NOTIFY); elsewhere it ends at once and leaves it to the leader."""
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=2, LANE_LINGER_SECONDS=30)
    first = make_tasks(2, tenant=tenant, url=receiver.url)
    (claim,) = leases.claim_due(limit=10)
    start_lane(worker, claim)
    wait_until(lambda: succeeded([task.id for task in first]) == 2, timeout=10, message="the first two")

    task, _created = task_create(tenant=tenant, data={"url": receiver.url + "/next"})

    if connection.vendor == "postgresql":
        wait_until(lambda: succeeded([task.id]), timeout=10, message="the lane to send the new callback")
        events = TaskEvent.objects.filter(task=task).order_by("at", "id").values_list("to_status", flat=True)
        assert list(events) == ["scheduled", "running", "succeeded"]  # never queued: not the leader's
        assert Lane.objects.get(token=claim.token).width == 2  # still lingering, at its width
    else:
        assert worker.wait_idle(timeout=10)
        assert not Lane.objects.filter(token=claim.token).exists()
        assert CallbackTask.objects.get(id=task.id).status == TaskStatus.SCHEDULED


@pytest.mark.django_db(transaction=True)
def test_a_lingering_lane_starts_its_keys_next_task_when_it_falls_due_and_ends_after_the_linger(
    tenant, receiver, worker, callbacks_settings
):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=2, LANE_LINGER_SECONDS=1.5)
    first = make_task(tenant=tenant, url=receiver.url)
    (claim,) = leases.claim_due(limit=10)
    # Made directly, as a retry falling due is: no creation wakes the lane, its due time does.
    later = make_task(
        tenant=tenant, url=receiver.url + "/later", run_at=timezone.now() + timedelta(seconds=0.5)
    )
    start_lane(worker, claim)

    if connection.vendor == "postgresql":
        wait_until(lambda: succeeded([first.id, later.id]) == 2, timeout=10, message="both callbacks")
        (sent_later,) = [request for request in receiver.received if request.path == "/later"]
        assert sent_later.at >= later.next_attempt_at.timestamp()
    # Nothing more of its key: the lane ends once its linger is over, and its slots are the leader's.
    wait_until(
        lambda: not Lane.objects.filter(token=claim.token).exists(), timeout=10, message="the lane to end"
    )
    if connection.vendor != "postgresql":
        assert succeeded([later.id]) == 0
        assert [c.task_ids for c in leases.claim_due(limit=10, now=later.next_attempt_at)] == [[later.id]]


def watch_widths(monkeypatch) -> list:
    """(time, width) after each refill of the worker's lanes: the widths the leader can read."""
    widths = []
    refill = lanes.refill

    def watched(**kwargs):
        result = refill(**kwargs)
        widths.append((time.monotonic(), result.width))
        return result

    monkeypatch.setattr(lanes, "refill", watched)
    return widths


@pytest.mark.django_db(transaction=True)
def test_a_lane_whose_time_is_up_gives_all_its_slots_back_at_once(
    tenant, receiver, worker, callbacks_settings, monkeypatch
):
    """Given back a send at a time, each slot would wake the leader to grant it as a lane of its own."""
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=4, LANE_SECONDS=0.3, LANE_LINGER_SECONDS=0)
    monkeypatch.setattr(worker_module, "ENDING_PAUSE", 5.0)  # sends to this receiver end well within it
    make_tasks(1000, tenant=tenant, url=receiver.url)  # more than the lane sends in its time
    (claim,) = leases.claim_due(limit=4)
    widths = watch_widths(monkeypatch)
    start_lane(worker, claim)

    wait_until(
        lambda: not Lane.objects.filter(token=claim.token).exists(), timeout=10, message="the lane to end"
    )
    assert len(receiver.received) > 4  # it refilled while its time lasted
    assert {width for _at, width in widths} == {4, 0}  # never narrower before it ended


@pytest.mark.django_db(transaction=True)
def test_a_lane_whose_time_is_up_does_not_hold_free_slots_for_a_slow_send(
    tenant, worker, callbacks_settings, monkeypatch
):
    callbacks_settings(MAX_CONCURRENCY_PER_ORIGIN=2, LANE_SECONDS=0.3, LANE_LINGER_SECONDS=0)
    monkeypatch.setattr(worker_module, "ENDING_PAUSE", 0.2)
    ended = {}

    def respond(request):
        if request.path == "/slow":
            time.sleep(3.0)
            ended["slow"] = time.monotonic()
        return Reply()

    with Receiver(respond) as receiver:
        make_task(tenant=tenant, url=receiver.url + "/slow", priority=9)  # claimed first
        make_tasks(1000, tenant=tenant, url=receiver.url)
        (claim,) = leases.claim_due(limit=2)
        widths = watch_widths(monkeypatch)
        start_lane(worker, claim)
        wait_until(lambda: "slow" in ended, timeout=10, message="the slow send")
        wait_until(lambda: not Lane.objects.filter(token=claim.token).exists(), timeout=10, message="the end")

    # The fast slot came back after the pause, while the slow send was still out.
    narrowed = [at for at, width in widths if width == 1]
    assert narrowed and narrowed[0] < ended["slow"] - 1.0
