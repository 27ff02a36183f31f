"""The run-time settings page: every run-time key with its value in force and where it comes from, set and
reset in place through services.runtime."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from callbacks import conf
from callbacks.domain.bounds import RUNTIME_KEYS
from callbacks.models import AuditLog, RuntimeSetting
from callbacks.services.runtime import runtime_settings_update

pytestmark = pytest.mark.django_db

LIST = reverse("admin:callbacks_runtimesetting_changelist")


def _rows(response) -> dict:
    return {row.key: row for row, _error, _submitted in response.context["rows"]}


def test_every_run_time_key_is_listed_with_its_value_source_and_bounds(admin_client, settings, monkeypatch):
    monkeypatch.setenv("CALLBACKS_CONNECT_TIMEOUT", "4")
    settings.CALLBACKS = {**settings.CALLBACKS, "CONNECT_TIMEOUT": 4.0}
    runtime_settings_update(changes={"MAX_RETRIES": 7}, actor_type="user", actor="x")

    response = admin_client.get(LIST)

    rows = _rows(response)
    assert set(rows) == set(RUNTIME_KEYS)
    assert (rows["MAX_RETRIES"].value, rows["MAX_RETRIES"].source) == (7, "runtime override")
    assert rows["MAX_RETRIES"].configured == settings.CALLBACKS["MAX_RETRIES"]
    assert (rows["CONNECT_TIMEOUT"].value, rows["CONNECT_TIMEOUT"].source) == (4.0, "environment")
    assert rows["BACKOFF_MULTIPLIER"].source == "default"
    assert rows["MAX_RETRIES"].bounds == "0 to 20"
    assert rows["DISPATCH_MAX_OUTSTANDING"].bounds == "0 to 1000000"
    html = response.content.decode()
    assert "0 runtime settings" not in html
    assert html.count('<tr id="tc-setting-') == len(RUNTIME_KEYS)
    assert "CALLBACKS_CONNECT_TIMEOUT" in html


def test_set_then_reset_an_override_in_place(admin_client):
    response = admin_client.post(LIST, {"key": "MAX_RETRIES", "value": "9", "operation": "set"})

    assert response.status_code == 302
    assert RuntimeSetting.objects.get(key="MAX_RETRIES").value == 9
    assert conf.get("MAX_RETRIES") == 9
    page = admin_client.get(LIST)
    assert "MAX_RETRIES set to 9" in page.content.decode()
    assert _rows(page)["MAX_RETRIES"].source == "runtime override"

    admin_client.post(LIST, {"key": "MAX_RETRIES", "operation": "reset"})
    assert not RuntimeSetting.objects.exists()
    assert _rows(admin_client.get(LIST))["MAX_RETRIES"].source == "default"
    assert AuditLog.objects.filter(action="settings.update", actor="admin").count() == 2


@pytest.mark.parametrize(
    ("value", "reason"), [("99", "between 0 and 20"), ("", "must be"), ("2.5", "whole number")]
)
def test_a_value_out_of_bounds_is_refused_on_its_row_and_nothing_saved(admin_client, value, reason):
    response = admin_client.post(LIST, {"key": "MAX_RETRIES", "value": value, "operation": "set"})

    assert response.status_code == 400
    errors = {row.key: error for row, error, _ in response.context["rows"] if error}
    assert list(errors) == ["MAX_RETRIES"] and reason in errors["MAX_RETRIES"]
    assert not RuntimeSetting.objects.exists()
    assert not AuditLog.objects.exists()


def test_a_viewer_sees_the_values_but_cannot_change_them(client):
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_runtimesetting"))
    client.force_login(viewer)

    page = client.get(LIST)
    assert page.status_code == 200 and 'name="operation"' not in page.content.decode()
    assert client.post(LIST, {"key": "MAX_RETRIES", "value": "9", "operation": "set"}).status_code == 403
    assert not RuntimeSetting.objects.exists()
