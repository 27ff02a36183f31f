"""Reading tasks back: list with filters and pages, detail, executions, events; tenants isolated; keys required."""

import base64
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from callbacks.models import CallbackTask, TaskStatus
from callbacks.services.tasks import task_create_batch
from callbacks.services.tenants import api_key_revoke
from tests.factories import make_execution, make_task_in_state

LIST = "/api/v1/callbacks/"

EXECUTION_FIELDS = {
    "id", "attempt", "started_at", "duration_ms", "outcome", "status_code", "response_headers", "response_body",
    "response_truncated", "http_version", "error", "request",
}  # fmt: skip


def listed(api, **params):
    response = api.get(LIST, params)
    assert response.status_code == 200, response.content
    return [task["id"] for task in response.json()["results"]]


def test_list_is_newest_first(api, tenant):
    older = make_task_in_state(tenant=tenant)
    newer = make_task_in_state(tenant=tenant)
    CallbackTask.objects.filter(pk=older.pk).update(created_at=newer.created_at - timedelta(seconds=5))
    assert listed(api) == [str(newer.id), str(older.id)]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "dead"}, ["dead"]),
        ({"business_id": "order-2"}, ["queued"]),
        ({"trace_id": "trace-1"}, ["dead"]),
        ({"queue": "bulk"}, ["queued"]),
        ({"status": "scheduled", "queue": "bulk"}, []),
    ],
)
def test_list_filters(api, tenant, params, expected):
    make_task_in_state(tenant=tenant, status=TaskStatus.DEAD, business_id="order-1", trace_id="trace-1")
    make_task_in_state(tenant=tenant, status=TaskStatus.QUEUED, business_id="order-2", queue="bulk")
    make_task_in_state(tenant=tenant, status=TaskStatus.SCHEDULED, business_id="order-3")
    response = api.get(LIST, params)
    assert [task["status"] for task in response.json()["results"]] == expected


def test_list_filters_by_creation_range_inclusive(api, tenant):
    tasks = [make_task_in_state(tenant=tenant) for _ in range(3)]
    base = timezone.now() - timedelta(days=3)
    for days, task in enumerate(tasks):
        CallbackTask.objects.filter(pk=task.pk).update(created_at=base + timedelta(days=days))
    middle = (base + timedelta(days=1)).isoformat()
    assert listed(api, created_after=middle) == [str(tasks[2].id), str(tasks[1].id)]
    assert listed(api, created_before=middle) == [str(tasks[1].id), str(tasks[0].id)]
    assert listed(api, created_after=middle, created_before=middle) == [str(tasks[1].id)]


@pytest.mark.parametrize(
    "params",
    [
        {"status": "lost"},
        {"created_after": "yesterday"},
        {"business_id": "x" * 201},
        {"cursor": "not-a-cursor"},
        {"page_size": "ten"},
        {"page_size": 0},
    ],
)
def test_bad_filters_are_400(api, params):
    response = api.get(LIST, params)
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == set(params)


def test_pages_walk_every_task_once(api, tenant):
    task_create_batch(tenant=tenant, items=[{"url": f"https://example.com/{n}"} for n in range(7)])
    seen, url, pages = [], LIST + "?page_size=3", 0
    while url:
        page = api.get(url).json()
        assert len(page["results"]) <= 3
        seen += [task["url"] for task in page["results"]]
        url, pages = page["next"], pages + 1
    assert pages == 3
    assert sorted(seen) == sorted(f"https://example.com/{n}" for n in range(7))


@pytest.mark.parametrize(
    "position",
    # Cursors that decode but whose position is no attempt number, or no creation time, or out of range.
    ["p=x", "r=1&p=x", "p=2024-13-45", "p=1e999"],
)
def test_a_malformed_cursor_is_400_naming_it(api, tenant, position):
    task = make_task_in_state(tenant=tenant, status=TaskStatus.RETRYING, attempts=1)
    make_execution(task=task, attempt=1)
    cursor = base64.b64encode(position.encode()).decode()
    for path in (f"{LIST}{task.pk}/executions/", LIST):
        response = api.get(path, {"cursor": cursor})
        assert response.status_code == 400, (path, response.content)
        assert list(response.json()["error"]["fields"]) == ["cursor"]


def test_page_size_is_bounded(api, tenant):
    task_create_batch(tenant=tenant, items=[{"url": "https://example.com/"} for _ in range(201)])
    assert len(api.get(LIST, {"page_size": 1000}).json()["results"]) == 200
    assert len(api.get(LIST).json()["results"]) == 50


def test_detail_shows_the_current_state(api, tenant):
    task = make_task_in_state(tenant=tenant, status=TaskStatus.RETRYING, attempts=2)
    CallbackTask.objects.filter(pk=task.pk).update(
        last_status_code=503, last_outcome="http_5xx", last_error="busy"
    )
    shown = api.get(f"{LIST}{task.id}/").json()
    assert (shown["status"], shown["attempts"], shown["last_status_code"]) == ("retrying", 2, 503)
    assert (shown["last_outcome"], shown["last_error"]) == ("http_5xx", "busy")


def test_executions_oldest_first_with_the_request_snapshot(api, tenant):
    task = make_task_in_state(tenant=tenant, status=TaskStatus.SUCCEEDED, attempts=2)
    now = timezone.now()
    make_execution(task=task, attempt=2, outcome="success", status_code=200, started_at=now)
    make_execution(task=task, attempt=1, started_at=now - timedelta(seconds=2), response_truncated=True)
    response = api.get(f"{LIST}{task.id}/executions/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [execution["attempt"] for execution in results] == [1, 2]
    first = results[0]
    assert set(first) == EXECUTION_FIELDS
    assert (first["outcome"], first["status_code"], first["response_truncated"]) == ("http_5xx", 503, True)
    assert first["request"] == {
        "method": "POST",
        "url": task.url,
        "headers": {"Authorization": "********", "X-Callback-Attempt": "1"},
    }
    assert first["response_body"] == "busy" and first["duration_ms"] == 12.5


def test_events_list_the_status_history(api, tenant):
    task = make_task_in_state(tenant=tenant)
    api.post(f"{LIST}{task.id}/cancel/")
    events = api.get(f"{LIST}{task.id}/events/").json()["results"]
    assert [(event["from_status"], event["to_status"]) for event in events] == [
        ("", "scheduled"),
        ("scheduled", "cancelled"),
    ]
    assert events[1]["note"].startswith("cancelled by tenant:acme")


# --- tenant isolation -------------------------------------------------------------------------------

PER_TASK = [
    ("get", ""),
    ("get", "executions/"),
    ("get", "events/"),
    ("post", "cancel/"),
    ("post", "retry/"),
]


@pytest.mark.parametrize(("verb", "suffix"), PER_TASK)
def test_another_tenants_task_is_404_for_every_verb(api, other_api, tenant, verb, suffix):
    task = make_task_in_state(tenant=tenant, status=TaskStatus.DEAD)
    make_execution(task=task, attempt=1)
    response = getattr(other_api, verb)(f"{LIST}{task.id}/{suffix}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    task.refresh_from_db()
    assert task.status == TaskStatus.DEAD  # untouched
    # The owner still reaches it (a dead task cannot be cancelled: 409, not 404).
    assert getattr(api, verb)(f"{LIST}{task.id}/{suffix}").status_code == (
        409 if suffix == "cancel/" else 200
    )


def test_another_tenants_tasks_are_not_listed(api, other_api, tenant):
    make_task_in_state(tenant=tenant, business_id="mine")
    make_task_in_state(tenant=other_api.tenant, business_id="theirs")
    assert [task["business_id"] for task in api.get(LIST).json()["results"]] == ["mine"]
    assert listed(api, business_id="theirs") == []


@pytest.mark.parametrize("task_id", [uuid.uuid4(), "not-a-uuid", "1"])
def test_unknown_ids_are_json_404(api, task_id):
    response = api.get(f"{LIST}{task_id}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- authentication ---------------------------------------------------------------------------------

ALL_ENDPOINTS = [("get", LIST), ("post", LIST), ("post", LIST + "batch/")] + [
    (verb, LIST + "{id}/" + suffix) for verb, suffix in PER_TASK
]


def bad_clients(new_tenant):
    revoked = APIClient()
    revoked.credentials(HTTP_AUTHORIZATION=f"Bearer {new_tenant.api_key}")
    yield "no key", APIClient()
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bearer tc_notarealkey0000000000000000000000000")
    yield "unknown key", wrong
    basic = APIClient()
    basic.credentials(HTTP_AUTHORIZATION=f"Basic {new_tenant.api_key}")
    yield "wrong scheme", basic
    api_key_revoke(api_key=new_tenant.tenant.api_keys.get())
    yield "revoked key", revoked


@pytest.mark.parametrize(("verb", "path"), ALL_ENDPOINTS)
def test_401_without_a_valid_key(new_tenant, verb, path):
    task = make_task_in_state(tenant=new_tenant.tenant)
    for name, client in bad_clients(new_tenant):
        response = getattr(client, verb)(
            path.format(id=task.id), {"url": "https://example.com/"}, format="json"
        )
        assert response.status_code == 401, name
        assert response.json()["error"]["code"] in ("not_authenticated", "authentication_failed"), name
        assert response["WWW-Authenticate"].startswith("Bearer"), name
    assert CallbackTask.objects.count() == 1
