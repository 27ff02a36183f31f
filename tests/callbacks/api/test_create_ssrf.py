"""The API refuses forbidden literal addresses at creation, with a 400 naming the field."""

import pytest

from callbacks.models import CallbackTask


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://192.168.1.1/hook",
        "http://100.64.0.1/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://0x0a000001/hook",
        # Non-canonical spellings of loopback are refused whatever is exempted: ambiguous on purpose.
        "http://2130706433/hook",
        "http://127.1/hook",
        "http://0177.0.0.1/hook",
    ],
)
def test_forbidden_literal_address_is_refused_and_nothing_stored(api, url):
    response = api.post("/api/v1/callbacks/", {"url": url}, format="json")

    assert response.status_code == 400, response.content
    assert "url" in response.json()["error"]["fields"]
    assert not CallbackTask.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://localhost/x",
        "http://api.localhost/x",
    ],
)
def test_loopback_is_refused_unless_its_network_is_exempted(api, settings, url):
    # The test settings exempt 127.0.0.0/8 and ::1 (CALLBACKS_ALLOWED_NETWORKS); without that, refused.
    assert api.post("/api/v1/callbacks/", {"url": url}, format="json").status_code == 201
    settings.CALLBACKS = {**settings.CALLBACKS, "ALLOWED_NETWORKS": []}
    response = api.post("/api/v1/callbacks/", {"url": url}, format="json")
    assert response.status_code == 400
    assert "url" in response.json()["error"]["fields"]


def test_a_name_is_accepted_at_creation_and_judged_at_send_time(api):
    response = api.post("/api/v1/callbacks/", {"url": "http://receiver.example/hook"}, format="json")
    assert response.status_code == 201
