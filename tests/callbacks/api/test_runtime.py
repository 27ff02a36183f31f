"""Run-time settings: changed through the API by operators, taken up without a restart."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from callbacks import conf
from callbacks.delivery import http
from callbacks.delivery.worker import DeliveryWorker
from callbacks.models import AuditLog, RuntimeSetting


@pytest.fixture
def operator(db):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-for-tests")
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_operator_changes_a_setting_and_every_reader_sees_it(operator, settings):
    default = settings.CALLBACKS["TOTAL_TIMEOUT"]

    response = operator.patch("/api/v1/settings/", {"TOTAL_TIMEOUT": 12.5}, format="json")

    assert response.status_code == 200
    assert response.json()["TOTAL_TIMEOUT"] == {
        **response.json()["TOTAL_TIMEOUT"],
        "value": 12.5,
        "default": default,
        "overridden": True,
    }
    assert conf.get("TOTAL_TIMEOUT") == 12.5
    audit = AuditLog.objects.get(action="settings.update")
    assert (audit.actor_type, audit.actor, audit.after) == ("user", "ops", {"TOTAL_TIMEOUT": 12.5})


def test_null_clears_an_override(operator, settings):
    operator.patch("/api/v1/settings/", {"MAX_RETRIES": 7}, format="json")
    response = operator.patch("/api/v1/settings/", {"MAX_RETRIES": None}, format="json")

    assert response.json()["MAX_RETRIES"]["overridden"] is False
    assert conf.get("MAX_RETRIES") == settings.CALLBACKS["MAX_RETRIES"]
    assert not RuntimeSetting.objects.exists()


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"CONCURRENCY": 0}, "CONCURRENCY"),
        ({"CONCURRENCY": 2.5}, "CONCURRENCY"),
        ({"TOTAL_TIMEOUT": "soon"}, "TOTAL_TIMEOUT"),
        ({"SECRET_KEY": "x"}, "SECRET_KEY"),
        ({"MAX_RETRIES": True}, "MAX_RETRIES"),
        ({"TOTAL_TIMEOUT": "nan"}, "TOTAL_TIMEOUT"),
        ({"BREAKER_OPEN_MAX_SECONDS": "inf"}, "BREAKER_OPEN_MAX_SECONDS"),
    ],
)
def test_bad_values_are_refused_whole(operator, changes, field):
    response = operator.patch(
        "/api/v1/settings/",
        {**changes, "MAX_RETRIES": 9} if field != "MAX_RETRIES" else changes,
        format="json",
    )

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not RuntimeSetting.objects.exists()  # all or nothing


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_json_that_is_not_finite_is_refused(operator, literal):
    response = operator.patch(
        "/api/v1/settings/", data=f'{{"TOTAL_TIMEOUT": {literal}}}', content_type="application/json"
    )
    assert response.status_code == 400
    assert not RuntimeSetting.objects.exists()


def test_tenants_cannot_change_installation_settings(api):
    # A valid key without the right: 403, not 401, so the integrator does not hunt for a key problem.
    for answer in (
        api.get("/api/v1/settings/"),
        api.patch("/api/v1/settings/", {"CONCURRENCY": 5}, format="json"),
    ):
        assert answer.status_code == 403, answer.content
        assert answer.json()["error"]["code"] == "permission_denied"
    assert APIClient().get("/api/v1/settings/").status_code == 401
    assert not RuntimeSetting.objects.exists()


def test_a_bad_stored_value_is_ignored_not_fatal(db, settings):
    RuntimeSetting.objects.create(key="CONCURRENCY", value=-3)
    conf.refresh()
    assert conf.get("CONCURRENCY") == settings.CALLBACKS["CONCURRENCY"]


@pytest.mark.django_db(transaction=True)
def test_running_worker_follows_concurrency_changes():
    worker = DeliveryWorker(concurrency=4, flush_seconds=0.01, name="follower", follow_settings=True)
    try:
        RuntimeSetting.objects.create(key="CONCURRENCY", value=9)
        conf.reset_cache()
        conf.refresh()
        worker._follow_runtime_settings()
        assert worker.concurrency == 9
    finally:
        worker.shutdown(timeout=5)


@pytest.mark.django_db
def test_pool_settings_change_rebuilds_the_session_for_new_requests():
    before = http.get_session()
    RuntimeSetting.objects.create(key="POOL_MAXSIZE_PER_HOST", value=3)
    conf.refresh()
    after = http.get_session()
    assert after is not before
    assert after.get_adapter("http://x")._pool_maxsize == 3
    assert http.get_session() is after  # unchanged settings: the same session again


def _staff(name, *permissions):
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user(name, password="pw-for-tests", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=permissions))
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_staff_need_the_admins_permissions_to_read_and_change_settings():
    bare = _staff("bare")
    assert bare.get("/api/v1/settings/").status_code == 403
    assert bare.patch("/api/v1/settings/", {"MAX_RETRIES": 7}, format="json").status_code == 403

    viewer = _staff("viewer", "view_runtimesetting")
    assert viewer.get("/api/v1/settings/").status_code == 200
    assert viewer.patch("/api/v1/settings/", {"MAX_RETRIES": 7}, format="json").status_code == 403
    assert not RuntimeSetting.objects.exists()

    changer = _staff("changer", "change_runtimesetting")
    assert changer.get("/api/v1/settings/").status_code == 200
    assert changer.patch("/api/v1/settings/", {"MAX_RETRIES": 7}, format="json").status_code == 200
    assert RuntimeSetting.objects.get().value == 7


@pytest.mark.django_db
def test_wrong_basic_passwords_are_throttled_per_address(settings):
    import base64

    settings.CALLBACKS = {**settings.CALLBACKS, "AUTH_FAILURE_RATE": "5/min"}
    get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-for-tests")

    def basic(password, address="127.0.0.1"):
        token = base64.b64encode(f"ops:{password}".encode()).decode()
        return APIClient().get("/api/v1/settings/", HTTP_AUTHORIZATION=f"Basic {token}", REMOTE_ADDR=address)

    assert [basic(f"guess-{n}").status_code for n in range(5)] == [401] * 5
    refused = basic("guess-5")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    # The right password from that address is refused alike: a guess that hits is not told apart.
    assert basic("pw-for-tests").status_code == 429
    assert basic("pw-for-tests", address="192.0.2.9").status_code == 200
