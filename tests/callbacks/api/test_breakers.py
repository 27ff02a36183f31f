"""Breakers through the API and `manage.py breaker`: scoping by the origins a tenant calls, reset with audit."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from callbacks.models import AuditLog, BreakerState, CallbackTask, CircuitBreaker, TaskStatus
from tests.callbacks.delivery.attempts import ORIGIN_A, ORIGIN_B, A, B
from tests.factories import make_task, past

pytestmark = pytest.mark.django_db

FIELDS = {
    "id",
    "origin",
    "state",
    "consecutive_failures",
    "open_count",
    "opened_at",
    "next_probe_at",
    "last_error",
    "concurrency_limit",
    "effective_concurrency_limit",
    "updated_at",
}


def open_breaker(origin, **fields):
    now = timezone.now()
    values = {
        "state": BreakerState.OPEN,
        "consecutive_failures": 5,
        "open_count": 2,
        "opened_at": now,
        "next_probe_at": now + timedelta(seconds=60),
        "last_error": "HTTP 503",
        **fields,
    }
    return CircuitBreaker.objects.create(origin=origin, **values)


def test_a_breaker_shows_the_concurrency_of_its_origin_slowed_down_or_not(api, tenant, settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "MAX_CONCURRENCY_PER_ORIGIN": 12}
    make_task(tenant=tenant, url=A)
    make_task(tenant=tenant, url=B)
    open_breaker(ORIGIN_A, state=BreakerState.CLOSED, concurrency_limit=3)
    open_breaker(ORIGIN_B)

    items = {item["origin"]: item for item in api.get("/api/v1/breakers/").json()["results"]}

    assert (items[ORIGIN_A]["concurrency_limit"], items[ORIGIN_A]["effective_concurrency_limit"]) == (3, 3)
    assert (items[ORIGIN_B]["concurrency_limit"], items[ORIGIN_B]["effective_concurrency_limit"]) == (
        None,
        12,
    )


def test_a_tenant_lists_the_breakers_of_origins_it_calls(api, tenant, other_api):
    make_task(tenant=tenant, url=A, last_error="HTTP 503")
    make_task(tenant=other_api.tenant, url=B)
    mine = open_breaker(ORIGIN_A)
    open_breaker(ORIGIN_B)

    response = api.get("/api/v1/breakers/")

    assert response.status_code == 200
    (item,) = response.json()["results"]
    assert set(item) == FIELDS
    assert item["id"] == mine.id and item["origin"] == ORIGIN_A and item["state"] == "open"
    assert (item["consecutive_failures"], item["open_count"], item["last_error"]) == (5, 2, "HTTP 503")
    assert item["next_probe_at"] is not None
    assert [b["origin"] for b in other_api.get("/api/v1/breakers/").json()["results"]] == [ORIGIN_B]


def test_the_list_filters_by_state_and_refuses_unknown_filters(api, tenant):
    make_task(tenant=tenant, url=A)
    make_task(tenant=tenant, url=B)
    open_breaker(ORIGIN_A)
    CircuitBreaker.objects.create(origin=ORIGIN_B, consecutive_failures=1)

    closed = api.get("/api/v1/breakers/", {"state": "closed"}).json()["results"]
    assert [b["origin"] for b in closed] == [ORIGIN_B]
    assert api.get("/api/v1/breakers/", {"state": "ajar"}).status_code == 400
    assert api.get("/api/v1/breakers/", {"colour": "red"}).status_code == 400


def test_reset_closes_releases_the_held_tasks_and_is_audited(api, tenant):
    breaker = open_breaker(ORIGIN_A)
    held = make_task(tenant=tenant, url=A, run_at=past(5), next_attempt_at=breaker.next_probe_at)
    later_on = make_task(tenant=tenant, url=A, run_at=timezone.now() + timedelta(hours=1))

    response = api.post(f"/api/v1/breakers/{breaker.id}/reset/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["state"], body["consecutive_failures"], body["open_count"], body["next_probe_at"]) == (
        "closed",
        0,
        0,
        None,
    )
    breaker.refresh_from_db()
    assert breaker.state == BreakerState.CLOSED
    held.refresh_from_db()
    assert held.next_attempt_at <= timezone.now()  # goes now, not at the old probe time
    later_on.refresh_from_db()
    assert later_on.next_attempt_at > timezone.now() + timedelta(minutes=59)  # its own time stays
    entry = AuditLog.objects.get(action="breaker.reset")
    assert (entry.actor_type, entry.tenant_id, entry.object_id) == ("tenant", tenant.id, str(breaker.id))
    assert entry.before["state"] == "open" and entry.after["state"] == "closed"


def test_reset_of_an_origin_the_tenant_never_called_is_404(api, tenant, other_api):
    make_task(tenant=other_api.tenant, url=A)
    breaker = open_breaker(ORIGIN_A)

    assert api.post(f"/api/v1/breakers/{breaker.id}/reset/").status_code == 404
    assert api.post("/api/v1/breakers/999999/reset/").status_code == 404
    assert api.post("/api/v1/breakers/not-a-number/reset/").status_code == 404
    breaker.refresh_from_db()
    assert breaker.state == BreakerState.OPEN
    assert not AuditLog.objects.filter(action="breaker.reset").exists()


def test_the_command_lists_breakers(tenant):
    open_breaker(ORIGIN_A)
    CircuitBreaker.objects.create(origin=ORIGIN_B)
    out = StringIO()

    call_command("breaker", "list", "--state", "open", stdout=out)
    assert ORIGIN_A in out.getvalue() and ORIGIN_B not in out.getvalue()

    out = StringIO()
    call_command("breaker", "list", "--json", stdout=out)
    assert [b["origin"] for b in json.loads(out.getvalue())] == [ORIGIN_A, ORIGIN_B]


def test_the_command_resets_by_origin_url_id_or_all_open(tenant):
    a = open_breaker(ORIGIN_A)
    b = open_breaker(ORIGIN_B, state=BreakerState.HALF_OPEN)
    out = StringIO()

    call_command("breaker", "reset", "http://127.0.0.1:9001/any/path", stdout=out)
    a.refresh_from_db()
    assert a.state == BreakerState.CLOSED and f"reset breaker {a.id}" in out.getvalue()

    a.state = BreakerState.OPEN
    a.save()
    call_command("breaker", "reset", str(a.id), stdout=out)
    a.refresh_from_db()
    assert a.state == BreakerState.CLOSED

    a.state = BreakerState.OPEN
    a.save()
    call_command("breaker", "reset", "--all-open", stdout=out)
    assert set(CircuitBreaker.objects.values_list("state", flat=True)) == {BreakerState.CLOSED}
    assert AuditLog.objects.filter(action="breaker.reset", actor="manage.py", actor_type="user").count() == 4
    assert AuditLog.objects.filter(action="breaker.reset", object_id=str(b.id)).count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reset"], "name one breaker"),
        (["reset", ORIGIN_A, "--all-open"], "name one breaker"),
        (["reset", "https://never.example.com"], "No breaker for https://never.example.com:443"),
        (["reset", "ftp://x.example.com"], "neither a breaker id nor a URL"),
        (["reset", "4242"], "No such breaker"),
    ],
)
def test_the_command_says_what_is_wrong(tenant, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("breaker", *args, stdout=StringIO())


def test_resetting_a_breaker_does_not_touch_other_origins_tasks(tenant):
    breaker = open_breaker(ORIGIN_A)
    other = make_task(tenant=tenant, url=B, next_attempt_at=breaker.next_probe_at)

    call_command("breaker", "reset", ORIGIN_A, stdout=StringIO())

    other.refresh_from_db()
    assert other.next_attempt_at == breaker.next_probe_at
    assert CallbackTask.objects.get(id=other.id).status == TaskStatus.SCHEDULED


def test_a_shared_breaker_shows_each_tenant_only_its_own_error(api, tenant, other_api):
    # The breaker's last failure was the other tenant's: its path and its receiver's answer are its own.
    make_task(tenant=other_api.tenant, url=A, last_error="timeout: /payroll/acme-secret?id=7")
    make_task(tenant=tenant, url=A)  # calls the origin, never failed
    breaker = open_breaker(ORIGIN_A, last_error="timeout: /payroll/acme-secret?id=7")

    (mine,) = api.get("/api/v1/breakers/").json()["results"]
    assert mine["state"] == "open" and mine["last_error"] == ""
    (theirs,) = other_api.get("/api/v1/breakers/").json()["results"]
    assert theirs["last_error"] == "timeout: /payroll/acme-secret?id=7"

    make_task(tenant=tenant, url=A, last_error="HTTP 502")
    (mine,) = api.get("/api/v1/breakers/").json()["results"]
    assert mine["last_error"] == "HTTP 502"

    reset = api.post(f"/api/v1/breakers/{breaker.id}/reset/").json()
    assert reset["last_error"] == "HTTP 502"
    assert "acme-secret" not in json.dumps(api.get("/api/v1/audit/").json())
