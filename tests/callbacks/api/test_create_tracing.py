"""Creating callbacks with a W3C trace context: the request's traceparent header, the traceparent field,
and how they agree with trace_id (tracing not exported here: the caller's context is stored as given)."""

import pytest

from callbacks.models import CallbackTask

pytestmark = pytest.mark.django_db

URL = "/api/v1/callbacks/"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01"
HOOK = "https://example.com/hook"


def test_the_request_traceparent_header_makes_the_callback_continue_the_callers_trace(api):
    response = api.post(URL, {"url": HOOK}, format="json", HTTP_TRACEPARENT=PARENT.upper())

    assert response.status_code == 201, response.content
    assert (response.json()["trace_id"], response.json()["traceparent"]) == (TRACE, PARENT)
    task = CallbackTask.objects.get()
    assert (task.trace_id, task.traceparent) == (TRACE, PARENT)


def test_the_traceparent_field_wins_over_the_header(api):
    own = f"00-{'a' * 32}-{'b' * 16}-01"
    response = api.post(URL, {"url": HOOK, "traceparent": own}, format="json", HTTP_TRACEPARENT=PARENT)

    assert response.status_code == 201, response.content
    assert (response.json()["trace_id"], response.json()["traceparent"]) == ("a" * 32, own)


def test_a_trace_id_of_another_trace_keeps_its_own_trace_despite_the_header(api):
    response = api.post(URL, {"url": HOOK, "trace_id": "order-42"}, format="json", HTTP_TRACEPARENT=PARENT)

    assert response.status_code == 201, response.content
    assert (response.json()["trace_id"], response.json()["traceparent"]) == ("order-42", "")


def test_a_header_that_is_no_traceparent_is_ignored(api):
    response = api.post(URL, {"url": HOOK}, format="json", HTTP_TRACEPARENT="nonsense")

    assert response.status_code == 201, response.content
    assert response.json()["traceparent"] == ""
    assert len(response.json()["trace_id"]) == 32  # generated, as without a header


@pytest.mark.parametrize(
    "payload, field, reason",
    [
        ({"traceparent": "00-nonsense"}, "traceparent", "W3C traceparent"),
        ({"traceparent": f"00-{TRACE}-{'0' * 16}-01"}, "traceparent", "all zeros"),
        ({"traceparent": PARENT, "trace_id": "order-42"}, "trace_id", "traceparent's trace id"),
    ],
)
def test_a_bad_or_contradictory_traceparent_field_is_a_400_naming_the_field(api, payload, field, reason):
    response = api.post(URL, {"url": HOOK, **payload}, format="json")

    assert response.status_code == 400
    assert reason in response.json()["error"]["fields"][field][0]
    assert not CallbackTask.objects.exists()


def test_a_batch_continues_the_header_s_trace_in_each_callback_that_gives_none(api):
    own = f"00-{'a' * 32}-{'b' * 16}-01"
    batch = {"callbacks": [{"url": HOOK}, {"url": HOOK, "traceparent": own}]}

    response = api.post(f"{URL}batch/", batch, format="json", HTTP_TRACEPARENT=PARENT)

    assert response.status_code == 201, response.content
    assert [item["traceparent"] for item in response.json()["callbacks"]] == [PARENT, own]
    assert [item["trace_id"] for item in response.json()["callbacks"]] == [TRACE, "a" * 32]
