"""An origin's admin page and the origins list: staff only, breaker and history, limits as the claim
sees them, in flight, latest attempts, charts of its host."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from callbacks.models import AuditLog, BreakerState, CallbackTask, CircuitBreaker, Lane, TaskStatus
from callbacks.services.breakers import breaker_reset
from callbacks.services.notifications import BREAKER_OPENED, NOTIFICATION_PREFIX
from monitoring.origins import origin_page_url, parse_origin
from tests.factories import make_execution, make_task

pytestmark = pytest.mark.django_db
ORIGIN = "https://down.example.com:443"


def test_the_page_url_survives_any_origin():
    for origin in (ORIGIN, "http://[::1]:8080", "http://127.0.0.1:9"):
        url = origin_page_url(origin)
        assert "/" not in url.removeprefix("/admin/origins/").rstrip("/")
    assert parse_origin("https://Down.Example.com/x?y=1") == ORIGIN
    with pytest.raises(ValueError, match="scheme://host:port"):
        parse_origin("down.example.com")


def test_staff_only(client, tenant):
    url = origin_page_url(ORIGIN)
    assert client.get(url).status_code == 302
    get_user_model().objects.create_user("clerk", password="pw-for-clerk", is_staff=False)
    client.login(username="clerk", password="pw-for-clerk")
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client.get(reverse("admin-origins")).status_code == 302


def test_a_bad_origin_is_not_found(admin_client):
    assert admin_client.get("/admin/origins/not-an-origin/").status_code == 404


def test_the_page_shows_breaker_limits_in_flight_attempts_and_history(admin_client, tenant, settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "MAX_CONCURRENCY_PER_ORIGIN": 8}
    now = timezone.now()
    breaker = CircuitBreaker.objects.create(
        origin=ORIGIN,
        state=BreakerState.OPEN,
        consecutive_failures=5,
        open_count=1,
        opened_at=now,
        next_probe_at=now + timedelta(minutes=2),
        last_error="HTTP 503",
        concurrency_limit=2,
    )
    running = make_task(tenant=tenant, url="https://down.example.com/a", status=TaskStatus.RUNNING)
    Lane.objects.create(
        token="lane-abcdef12",
        queue="default",
        origin=ORIGIN,
        tenant=tenant,
        width=1,
        created_at=now,
        expires_at=now + timedelta(minutes=1),
    )
    make_task(tenant=tenant, url="https://down.example.com/b")  # held by the breaker
    make_task(tenant=tenant, url="https://down.example.com/c", run_at=now + timedelta(hours=1))
    for attempt in range(1, 4):
        make_execution(task=running, attempt=attempt)
    CallbackTask.objects.create(
        **{
            field.name: getattr(running, field.name)
            for field in CallbackTask._meta.concrete_fields
            if field.name not in ("id", "payload", "business_id", "status", "url", "origin")
        },
        url="https://tenant.example.com/notifications",  # told at the tenant's own URL
        origin="https://tenant.example.com:443",
        status=TaskStatus.SUCCEEDED,
        business_id=f"{NOTIFICATION_PREFIX}{BREAKER_OPENED}",
        payload=json.dumps(
            {
                "type": BREAKER_OPENED,
                "data": {
                    "origin": ORIGIN,
                    "opened_at": now.isoformat(),
                    "consecutive_failures": 5,
                    "last_error": "HTTP 503",
                },
            },
            separators=(",", ":"),
        ),
    )

    response = admin_client.get(origin_page_url(ORIGIN))

    assert response.status_code == 200
    context = response.context
    assert context["breaker"] == breaker
    assert context["limits"]["concurrency"] == 2  # slowed down below the configured 8
    assert context["limits"]["configured"] == 8
    assert context["limits"]["in_use"] == 1
    assert context["limits"]["closed"] == "its breaker holds it"
    assert context["in_flight"]["total"] == 1 and len(context["in_flight"]["lanes"]) == 1
    assert (context["backlog"]["held"], context["backlog"]["waiting"]) == (1, 1)
    assert len(context["attempts"]) == 3
    assert [entry["what"] for entry in context["history"]] == ["breaker.opened"]
    html = response.content.decode()
    assert "lane-abc" in html and "HTTP 503" in html
    assert html.count('<svg class="tc-chart"') == 4

    cache.clear()
    breaker_reset(breaker=breaker, actor_type="user", actor="operator")
    history = admin_client.get(origin_page_url(ORIGIN)).context["history"]
    assert [entry["what"] for entry in history] == ["breaker.reset", "breaker.opened"]
    assert "state: open → closed" in history[0]["detail"]


def test_an_origin_that_never_failed_has_a_page_too(admin_client, tenant):
    make_task(tenant=tenant, url="https://fine.example.com/")

    response = admin_client.get(origin_page_url("https://fine.example.com:443"))

    assert response.context["breaker"] is None
    assert response.context["backlog"]["ready"] == 1
    assert "never failed" in response.content.decode()


def test_the_list_finds_origins_and_the_form_opens_any(admin_client, tenant):
    CircuitBreaker.objects.create(origin=ORIGIN, state=BreakerState.OPEN)
    make_task(tenant=tenant, url="https://fine.example.com/")

    response = admin_client.get(reverse("admin-origins"))
    origins = [row["origin"] for row in response.context["rows"]]
    assert origins == [ORIGIN, "https://fine.example.com:443"]  # open breakers first

    found = admin_client.get(reverse("admin-origins"), {"origin": "https://elsewhere.example.com/x"})
    assert found.status_code == 302 and found["Location"] == origin_page_url(
        "https://elsewhere.example.com:443"
    )
    bad = admin_client.get(reverse("admin-origins"), {"origin": "ftp://x"})
    assert "origin:" in bad.content.decode() and bad.context["form"].errors


def test_breakers_and_tasks_in_the_admin_link_to_the_page(admin_client, tenant):
    breaker = CircuitBreaker.objects.create(origin=ORIGIN, state=BreakerState.OPEN)
    make_task(tenant=tenant, url="https://down.example.com/")
    page = origin_page_url(ORIGIN)

    assert page in admin_client.get(reverse("admin:callbacks_circuitbreaker_changelist")).content.decode()
    assert (
        page
        in admin_client.get(
            reverse("admin:callbacks_circuitbreaker_change", args=[breaker.pk])
        ).content.decode()
    )
    assert page in admin_client.get(reverse("admin:callbacks_callbacktask_changelist")).content.decode()


def test_openings_the_engine_recorded_carry_the_tenants_told_of_them(
    tenant, settings, django_capture_on_commit_callbacks
):
    """Failures open the breaker through the engine's own recording; the tenant's notification of that
    opening is shown with it, not as a second opening."""
    from monitoring.origin_page import breaker_history
    from tests.callbacks.delivery.attempts import ORIGIN_A
    from tests.callbacks.delivery.breaker.breakers import open_breaker

    settings.CALLBACKS = {
        **settings.CALLBACKS,
        "BREAKER_FAILURE_THRESHOLD": 3,
        "MAX_CONCURRENCY_PER_ORIGIN": 100,
    }
    tenant.notification_url = "https://tenant.example.com/notifications"
    tenant.save()
    with django_capture_on_commit_callbacks(execute=True):
        open_breaker(tenant, now=timezone.now())
    breaker = CircuitBreaker.objects.get(origin=ORIGIN_A)

    assert AuditLog.objects.filter(action="breaker.opened", object_id=str(breaker.pk)).count() == 1
    (opening,) = breaker_history(ORIGIN_A, breaker)
    assert (opening["what"], opening["who"]) == ("breaker.opened", "the engine")
    assert "after 3 failures in a row" in opening["detail"]
    assert [told["tenant"] for told in opening["told"]] == [tenant.name]
