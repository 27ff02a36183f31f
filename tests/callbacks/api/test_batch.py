"""POST /api/v1/callbacks/batch/: up to 1000, all or nothing, errors by index, idempotency keys in order."""

import pytest
from django.conf import settings
from django.test import override_settings

from callbacks.models import AuditLog, CallbackTask, TaskEvent
from callbacks.services import tasks as task_services
from tests.factories import make_task_in_state

URL = "/api/v1/callbacks/batch/"


def item(n, **extra):
    return {"url": f"https://example.com/hook/{n}", "business_id": f"b{n}", **extra}


def nothing_stored():
    return (
        not CallbackTask.objects.exists() and not TaskEvent.objects.exists() and not AuditLog.objects.exists()
    )


def test_a_batch_is_stored_in_order(api, tenant):
    response = api.post(URL, {"callbacks": [item(n) for n in range(3)]}, format="json")
    assert response.status_code == 201, response.content
    shown = response.json()["callbacks"]
    assert [task["business_id"] for task in shown] == ["b0", "b1", "b2"]
    stored = {str(task.id): task for task in CallbackTask.objects.filter(tenant=tenant)}
    assert set(stored) == {task["id"] for task in shown}
    assert all(
        task.status == "scheduled" and task.origin == "https://example.com:443" for task in stored.values()
    )
    assert TaskEvent.objects.filter(note="created").count() == 3
    audit = AuditLog.objects.get()
    assert audit.action == "task.create_batch" and audit.after["count"] == 3
    assert sorted(audit.after["ids"]) == sorted(stored)


def test_one_bad_item_stores_nothing_and_is_named_by_index(api):
    callbacks = [item(0), item(1, url="ftp://example.com/"), item(2), item(3, priority=99, colour="red")]
    response = api.post(URL, {"callbacks": callbacks}, format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]["callbacks"]
    assert set(fields) == {"1", "3"}
    assert "http and https" in fields["1"]["url"][0]
    assert set(fields["3"]) == {"priority", "colour"}
    assert nothing_stored()


def test_a_body_over_the_limit_in_one_item_is_413_and_stores_nothing(api):
    limited = {**settings.CALLBACKS, "REQUEST_BODY_LIMIT": 10}
    with override_settings(CALLBACKS=limited):
        callbacks = [item(0), item(1, body_format="raw", body="x" * 11)]
        response = api.post(URL, {"callbacks": callbacks}, format="json")
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "body_too_large"
    assert "limit is 10 bytes" in error["fields"]["callbacks"]["1"]["body"][0]
    assert nothing_stored()


def test_a_failure_while_storing_rolls_back_the_whole_batch(api, monkeypatch):
    """All or nothing beyond validation too: an error after the tasks are inserted leaves no trace."""

    def fail(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(task_services, "audit_record", fail)
    api.raise_request_exception = False
    response = api.post(URL, {"callbacks": [item(0), item(1)]}, format="json")
    assert response.status_code == 500
    assert nothing_stored()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"callbacks": []}, "at least 1"),
        ({"callbacks": {"0": item(0)}}, "list"),
        ({"callbacks": [item(n) for n in range(1001)]}, "no more than 1000"),
        ({}, "required"),
        ({"callbacks": [item(0)], "atomic": False}, "unknown field"),
    ],
    ids=["empty", "not a list", "over 1000", "missing", "unknown field"],
)
def test_the_batch_itself_is_checked(api, payload, reason):
    response = api.post(URL, payload, format="json")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert reason in " ".join(fields.get("callbacks") or fields.get("atomic"))
    assert nothing_stored()


def test_a_thousand_fit(api):
    response = api.post(URL, {"callbacks": [item(n) for n in range(1000)]}, format="json")
    assert response.status_code == 201
    assert CallbackTask.objects.count() == 1000


def test_idempotency_keys_repeat_within_the_batch_and_against_stored_tasks(api, tenant):
    existing = make_task_in_state(tenant=tenant, **item(1, idempotency_key="old"))
    callbacks = [
        item(0, idempotency_key="new"),
        item(1, idempotency_key="old"),
        item(0, idempotency_key="new"),  # the same request again
        item(3),
    ]
    response = api.post(URL, {"callbacks": callbacks}, format="json")
    assert response.status_code == 201
    ids = [task["id"] for task in response.json()["callbacks"]]
    assert ids[1] == str(existing.id)
    assert ids[0] == ids[2] != ids[3]
    assert CallbackTask.objects.count() == 3  # existing + "new" + the keyless one


def test_a_key_repeated_with_a_different_request_refuses_the_batch(api, tenant):
    api.post(URL, {"callbacks": [item(0, idempotency_key="stored")]}, format="json")
    callbacks = [
        item(1, idempotency_key="fresh"),
        item(2, idempotency_key="stored"),  # another request under a key already used
        item(3, idempotency_key="fresh"),  # another request than item 0 of this batch
        item(0, idempotency_key="stored"),  # the same request: fine
    ]
    response = api.post(URL, {"callbacks": callbacks}, format="json")
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert set(error["fields"]["callbacks"]) == {"1", "2"}
    assert error["fields"]["callbacks"]["1"] == {"idempotency_key": ["already used with a different request"]}
    assert CallbackTask.objects.count() == 1


def test_a_batch_wakes_the_dispatcher_once(api, django_capture_on_commit_callbacks, monkeypatch):
    calls = []
    monkeypatch.setattr(task_services, "notify_due", lambda origins: calls.append(sorted(origins)))
    with django_capture_on_commit_callbacks(execute=True):
        api.post(URL, {"callbacks": [item(n) for n in range(5)]}, format="json")
    assert calls == [["https://example.com:443"]]  # one wake-up, naming the origin they go to
