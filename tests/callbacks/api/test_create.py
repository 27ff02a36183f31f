"""POST /api/v1/callbacks/: what is stored, what is shown back, idempotency, policy resolution, wake-ups."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from callbacks.models import AuditLog, CallbackTask, TaskEvent, TaskStatus
from callbacks.services import tasks as task_services
from callbacks.services.tasks import task_create
from callbacks.services.tenants import tenant_create
from tests.factories import declare_queues

URL = "/api/v1/callbacks/"

OUTPUT_FIELDS = {
    "id", "url", "method", "headers", "body", "body_format", "run_at", "priority", "queue", "max_retries",
    "backoff", "timeout", "success_statuses", "business_id", "trace_id", "traceparent", "idempotency_key",
    "ordering_key",
    "status", "attempts", "next_attempt_at", "last_status_code", "last_outcome", "last_error", "created_at",
    "updated_at", "finished_at",
}  # fmt: skip


def create(api, **payload):
    payload.setdefault("url", "https://example.com/hook")
    response = api.post(URL, payload, format="json")
    assert response.status_code in (200, 201), response.content
    return response


def test_defaults_are_filled_in_and_shown(api, tenant):
    response = create(api, body={"order": 42})
    assert response.status_code == 201
    shown = response.json()
    assert set(shown) == OUTPUT_FIELDS
    task = CallbackTask.objects.get()
    assert task.tenant == tenant
    assert shown["id"] == str(task.id)
    assert shown["method"] == "POST" and shown["body_format"] == "json" and shown["body"] == {"order": 42}
    assert shown["priority"] == 5 and shown["queue"] == "default"
    assert shown["max_retries"] == 3
    assert shown["backoff"] == {"initial_seconds": 1.0, "multiplier": 1.5, "max_seconds": 60.0}
    assert shown["timeout"] == {"connect_seconds": 10.0, "total_seconds": 30.0}
    assert shown["success_statuses"] == "200-299"
    assert shown["status"] == "scheduled" and shown["attempts"] == 0
    assert shown["idempotency_key"] is None and shown["finished_at"] is None
    assert len(shown["trace_id"]) == 32 and int(shown["trace_id"], 16) >= 0
    # Due now: run_at and the first attempt are the creation time.
    assert task.run_at == task.next_attempt_at == task.due_at == task.created_at
    assert shown["run_at"] == shown["created_at"] == shown["next_attempt_at"]
    assert task.origin == "https://example.com:443"
    assert task.payload == '{"order":42}'


def test_the_callers_values_are_kept(api):
    declare_queues("bulk")
    create(
        api,
        url="HTTP://Example.COM:8080/Hook?q=1",
        method="DELETE",
        priority=0,
        queue="bulk",
        business_id="order-7",
        trace_id="trace-abc",
        ordering_key="customer-1",
        success_statuses="204, 200",
    )
    task = CallbackTask.objects.get()
    assert task.url == "HTTP://Example.COM:8080/Hook?q=1"  # sent as given
    assert task.origin == "http://example.com:8080"
    assert (task.method, task.priority, task.queue) == ("DELETE", 0, "bulk")
    assert (task.business_id, task.trace_id, task.ordering_key) == ("order-7", "trace-abc", "customer-1")
    assert task.success_statuses == "200,204"


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1/x", "http://127.0.0.1:80"),
        ("https://[::1]:8443/x", "https://[::1]:8443"),
        ("http://billing:8080/hook", "http://billing:8080"),
    ],
)
def test_origin_fills_in_ports_and_keeps_ipv6_brackets(api, url, origin):
    create(api, url=url)
    assert CallbackTask.objects.get().origin == origin


def test_run_at_with_an_offset_is_stored_in_utc(api):
    shown = create(api, run_at="2030-01-01T09:00:00+08:00").json()
    task = CallbackTask.objects.get()
    assert task.run_at == datetime(2030, 1, 1, 1, 0, tzinfo=UTC)
    assert task.next_attempt_at == task.due_at == task.run_at
    assert shown["run_at"] == "2030-01-01T01:00:00Z"


def test_delay_seconds_counts_from_creation(api):
    create(api, delay_seconds=90)
    task = CallbackTask.objects.get()
    assert task.run_at == task.next_attempt_at == task.created_at + timedelta(seconds=90)


@pytest.mark.parametrize(
    ("body_format", "body", "payload"),
    [
        ("json", {"b": [1, 2.5, None, True], "a": "ü"}, '{"b":[1,2.5,null,true],"a":"ü"}'),
        ("json", "just a string", '"just a string"'),
        ("xml", "<order id='1'><total>9.5</total></order>", "<order id='1'><total>9.5</total></order>"),
        ("form", {"a": "1 2", "b": ["x", "y"], "c": True}, "a=1+2&b=x&b=y&c=true"),
        ("raw", "line1\nline2 \u00e9", "line1\nline2 \u00e9"),
    ],
)
def test_bodies_are_stored_as_sent_and_shown_back(api, body_format, body, payload):
    shown = create(api, body_format=body_format, body=body).json()
    assert CallbackTask.objects.get().payload == payload
    expected = {"a": "1 2", "b": ["x", "y"], "c": "true"} if body_format == "form" else body
    assert shown["body"] == expected


def test_no_body_is_an_empty_payload(api):
    shown = create(api, method="GET").json()
    assert CallbackTask.objects.get().payload == ""
    assert shown["body"] is None


def test_secret_headers_are_masked_when_shown_but_stored_for_sending(api):
    headers = {
        "Authorization": "Bearer s3cret",
        "X-Api-Key": "k",
        "Content-Type": "text/csv",
        "X-Pad": "  v  ",
    }
    shown = create(api, headers=headers, body_format="raw", body="a,b").json()
    assert shown["headers"] == {
        "Authorization": "********",
        "X-Api-Key": "********",
        "Content-Type": "text/csv",
        "X-Pad": "v",
    }
    stored = CallbackTask.objects.get().headers
    assert stored["Authorization"] == "Bearer s3cret" and stored["X-Pad"] == "v"


def test_creation_is_recorded_as_an_event_and_in_the_audit_log(api, tenant):
    shown = create(api).json()
    event = TaskEvent.objects.get()
    assert (event.from_status, event.to_status, event.note) == ("", "scheduled", "created")
    audit = AuditLog.objects.get()
    assert (audit.actor_type, audit.action, audit.object_id, audit.tenant) == (
        "tenant",
        "task.create",
        shown["id"],
        tenant,
    )
    assert audit.actor.startswith("tenant:acme key:tc_")
    assert audit.before is None and audit.after["status"] == "scheduled"


# --- idempotency ------------------------------------------------------------------------------


def test_the_same_request_again_returns_the_existing_task(api):
    first = create(api, idempotency_key="order-1", body={"n": 1}, delay_seconds=60)
    # Defaults spelt out are the same request; a relative delay is what was asked, not a moving time.
    again = create(api, idempotency_key="order-1", body={"n": 1}, delay_seconds=60, method="POST")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert CallbackTask.objects.count() == 1 and TaskEvent.objects.count() == 1


@pytest.mark.parametrize(
    "change",
    [{"body": {"n": 2}}, {"url": "https://example.com/other"}, {"priority": 9}, {"headers": {"X-A": "b"}}],
)
def test_a_key_reused_with_a_different_request_is_a_conflict(api, change):
    first = create(api, idempotency_key="order-1", body={"n": 1})
    payload = {"url": "https://example.com/hook", "idempotency_key": "order-1", "body": {"n": 1}, **change}
    response = api.post(URL, payload, format="json")
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert first.json()["id"] in error["fields"]["idempotency_key"][0]
    assert CallbackTask.objects.count() == 1


def test_the_same_instant_in_another_offset_is_the_same_request(api):
    first = create(api, idempotency_key="k", run_at="2030-01-01T09:00:00+08:00")
    again = create(api, idempotency_key="k", run_at="2030-01-01T01:00:00Z")
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])


def test_idempotency_keys_are_per_tenant(api, other_api):
    mine = create(api, idempotency_key="k")
    theirs = create(other_api, idempotency_key="k")
    assert theirs.status_code == 201 and theirs.json()["id"] != mine.json()["id"]


def test_a_key_taken_between_read_and_insert_returns_the_winner(tenant, monkeypatch):
    """The race: the pre-read saw no task, then the insert hits the unique constraint."""
    winner, _ = task_create(tenant=tenant, data={"url": "https://example.com/", "idempotency_key": "k"})
    monkeypatch.setattr(task_services, "_existing_task", lambda **kwargs: None)
    task, created = task_create(tenant=tenant, data={"url": "https://example.com/", "idempotency_key": "k"})
    assert (task.id, created) == (winner.id, False)
    # The savepoint kept the surrounding transaction usable.
    assert CallbackTask.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_one_key_make_one_task():
    tenant = tenant_create(name="racer").tenant
    threads_count = 6
    barrier = threading.Barrier(threads_count)
    results, errors = [], []

    def create_one():
        try:
            barrier.wait()
            results.append(
                task_create(tenant=tenant, data={"url": "https://example.com/", "idempotency_key": "same"})
            )
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create_one) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({task.id for task, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert CallbackTask.objects.filter(tenant=tenant).count() == 1


# --- policy resolution: task > tenant > installation ----------------------------------------


def test_tenant_defaults_apply_when_the_task_gives_none(api, tenant):
    tenant.max_retries = 7
    tenant.backoff_initial_seconds = 2
    tenant.backoff_multiplier = 3
    tenant.backoff_max_seconds = 30
    tenant.connect_timeout_seconds = 1
    tenant.total_timeout_seconds = 5
    tenant.success_statuses = "200,202"
    tenant.save()
    shown = create(api).json()
    assert shown["max_retries"] == 7
    assert shown["backoff"] == {"initial_seconds": 2.0, "multiplier": 3.0, "max_seconds": 30.0}
    assert shown["timeout"] == {"connect_seconds": 1.0, "total_seconds": 5.0}
    assert shown["success_statuses"] == "200,202"


def test_task_values_win_over_the_tenants(api, tenant):
    tenant.max_retries = 7
    tenant.backoff_multiplier = 3
    tenant.total_timeout_seconds = 5
    tenant.save()
    shown = create(
        api,
        max_retries=0,
        backoff={"multiplier": 2},
        timeout={"total_seconds": 12},
        success_statuses=[201],
    ).json()
    assert shown["max_retries"] == 0
    assert shown["backoff"]["multiplier"] == 2.0
    assert shown["timeout"]["total_seconds"] == 12.0
    assert shown["success_statuses"] == "201"


def test_a_task_value_beyond_an_inherited_bound_moves_the_bound(api):
    """A first delay of 120 s under the 60 s default cap, a connect time of 45 s under the 30 s total."""
    shown = create(api, backoff={"initial_seconds": 120}, timeout={"connect_seconds": 45}).json()
    assert shown["backoff"]["max_seconds"] == 120.0
    assert shown["timeout"]["total_seconds"] == 45.0


# --- waking the dispatcher -----------------------------------------------------------------------


# Every creation wakes the dispatcher, delayed ones too: it then computes its sleep again, so a
# task due before the time it meant to wake at is not late. One due now names its origin, for a lane
# of that origin waiting for work.
@pytest.mark.parametrize("extra", [{}, {"delay_seconds": 1}, {"delay_seconds": 60}])
def test_the_dispatcher_is_woken_after_commit(api, django_capture_on_commit_callbacks, monkeypatch, extra):
    calls = []
    monkeypatch.setattr(task_services, "notify_due", lambda origins: calls.append(sorted(origins)))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        create(api, **extra)
    assert calls == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert calls == [[] if extra else ["https://example.com:443"]]


def test_the_status_starts_scheduled(api):
    create(api)
    assert CallbackTask.objects.get().status == TaskStatus.SCHEDULED
