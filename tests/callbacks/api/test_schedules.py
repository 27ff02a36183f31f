"""The schedule API: create, read, change, pause, resume, delete; 400 naming the field; isolation."""

from datetime import datetime

import pytest
from django.utils import timezone

from callbacks.models import AuditLog, CallbackSchedule

URL = "http://127.0.0.1:9/hook"
TEMPLATE = {"url": URL, "body": {"a": 1}, "headers": {"Authorization": "Bearer s3cret"}}


def create(api, **fields):
    body = {"name": "nightly", "cron": "30 2 * * *", "timezone": "Europe/Berlin", "task_template": TEMPLATE}
    body.update(fields)
    return api.post("/api/v1/schedules/", body, format="json")


def parse(value):
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.django_db
def test_create_answers_the_schedule_with_its_next_runs(api, tenant):
    response = create(api)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "nightly" and body["cron"] == "30 2 * * *" and body["timezone"] == "Europe/Berlin"
    assert body["missed_policy"] == "skip" and body["paused"] is False
    runs = [parse(at) for at in body["next_runs"]]
    assert len(runs) == 5 and runs == sorted(runs) and runs[0] > timezone.now()
    assert parse(body["next_fire_at"]) == runs[0]
    assert body["task_template"]["headers"]["Authorization"] != "Bearer s3cret"  # masked
    schedule = CallbackSchedule.objects.get(pk=body["id"])
    assert schedule.tenant == tenant and schedule.task_template == TEMPLATE
    audit = AuditLog.objects.get(action="schedule.create")
    assert audit.actor_type == "tenant" and audit.object_id == body["id"]


@pytest.mark.django_db
def test_six_field_seconds_cron_is_accepted(api):
    response = create(api, cron="*/2 * * * * *", timezone="UTC")

    assert response.status_code == 201, response.content
    runs = [parse(at) for at in response.json()["next_runs"]]
    assert [(b - a).total_seconds() for a, b in zip(runs, runs[1:], strict=False)] == [2.0] * 4


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * *"}, "cron"),
        ({"cron": "0 0 31 2 *"}, "cron"),
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"missed_policy": "storm"}, "missed_policy"),
        ({"task_template": "http://x/"}, "task_template"),
        ({"task_template": {"url": "ftp://127.0.0.1/"}}, "task_template"),
        ({"task_template": {"url": URL, "priority": 12}}, "task_template"),
        ({"task_template": {"url": URL, "run_at": "2030-01-01T00:00:00Z"}}, "task_template"),
        ({"task_template": {"url": URL, "idempotency_key": "k"}}, "task_template"),
        ({"name": ""}, "name"),
        ({"every": "day"}, "every"),
    ],
)
def test_invalid_input_is_400_naming_the_field(api, fields, field):
    response = create(api, **fields)

    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not CallbackSchedule.objects.exists()


@pytest.mark.django_db
def test_template_errors_name_the_field_inside_the_template(api):
    response = create(api, task_template={"url": URL, "priority": 12, "delay_seconds": 5})

    fields = response.json()["error"]["fields"]["task_template"]
    assert set(fields) == {"priority", "delay_seconds"}


@pytest.mark.django_db
def test_names_are_unique_per_tenant(api, other_api):
    assert create(api).status_code == 201
    again = create(api)
    assert again.status_code == 400 and "name" in again.json()["error"]["fields"]
    assert create(other_api).status_code == 201


@pytest.mark.django_db
def test_list_and_detail_show_only_the_tenant_s_schedules(api, other_api):
    mine = create(api).json()["id"]
    theirs = create(other_api).json()["id"]

    listed = api.get("/api/v1/schedules/").json()["results"]
    assert [item["id"] for item in listed] == [mine]
    assert api.get(f"/api/v1/schedules/{mine}/").status_code == 200
    for method in ("get", "patch", "delete"):
        assert getattr(api, method)(f"/api/v1/schedules/{theirs}/", {}, format="json").status_code == 404
    for action in ("pause", "resume"):
        assert api.post(f"/api/v1/schedules/{theirs}/{action}/").status_code == 404
    assert api.get("/api/v1/schedules/not-a-uuid/").status_code == 404
    assert CallbackSchedule.objects.filter(pk=theirs, paused=False).exists()


@pytest.mark.django_db
def test_patch_changing_the_cron_recomputes_the_next_fire(api):
    created = create(api).json()

    response = api.patch(
        f"/api/v1/schedules/{created['id']}/", {"cron": "0 9 * * 1", "timezone": "UTC"}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    nxt = parse(body["next_fire_at"])
    assert (nxt.weekday(), nxt.hour, nxt.minute) == (0, 9, 0)
    assert body["name"] == "nightly"  # untouched
    audit = AuditLog.objects.get(action="schedule.update")
    assert audit.before["cron"] == "30 2 * * *" and audit.after["cron"] == "0 9 * * 1"


@pytest.mark.django_db
def test_patch_with_an_invalid_value_changes_nothing(api):
    created = create(api).json()

    response = api.patch(f"/api/v1/schedules/{created['id']}/", {"timezone": "Nowhere/Else"}, format="json")

    assert response.status_code == 400 and "timezone" in response.json()["error"]["fields"]
    assert CallbackSchedule.objects.get(pk=created["id"]).timezone == "Europe/Berlin"


@pytest.mark.django_db
def test_pause_and_resume(api):
    created = create(api).json()
    url = f"/api/v1/schedules/{created['id']}"

    paused = api.post(f"{url}/pause/")
    assert paused.status_code == 200
    assert paused.json()["paused"] is True
    assert paused.json()["next_fire_at"] is None and paused.json()["next_runs"] == []
    assert api.post(f"{url}/pause/").status_code == 200  # idempotent

    resumed = api.post(f"{url}/resume/").json()
    assert resumed["paused"] is False
    assert parse(resumed["next_fire_at"]) > timezone.now()
    assert len(resumed["next_runs"]) == 5
    assert list(
        AuditLog.objects.filter(object_id=created["id"]).order_by("id").values_list("action", flat=True)
    ) == ["schedule.create", "schedule.update", "schedule.update"]


@pytest.mark.django_db
def test_delete(api):
    created = create(api).json()

    assert api.delete(f"/api/v1/schedules/{created['id']}/").status_code == 204

    assert not CallbackSchedule.objects.exists()
    assert AuditLog.objects.filter(action="schedule.delete", object_id=created["id"]).exists()
    assert api.get(f"/api/v1/schedules/{created['id']}/").status_code == 404


@pytest.mark.django_db
def test_schedules_need_an_api_key(client):
    assert client.get("/api/v1/schedules/").status_code == 401
