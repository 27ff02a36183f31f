"""End to end: with OTEL_EXPORTER_OTLP_ENDPOINT set, every attempt a django-q2 worker process makes is
exported as a client span to an OTLP/HTTP receiver on 127.0.0.1 (at the latest as the worker stops), in the trace the caller gave when it
created the callback (the API request's traceparent header, or the traceparent field), as a child of the
span that created it; the receiver's traceparent header names the attempt's span. Creation (in this
process, which serves the API here) and dispatch (in the dispatcher) are spans too."""

import pytest

from callbacks import tracing
from callbacks.models import CallbackTask, TaskExecution
from tests.e2e.helpers import unfinished
from tests.otlp import OtlpReceiver
from tests.processes import wait_until
from tests.receivers import Reply

pytestmark = [pytest.mark.e2e]

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
FIELD_TRACE = "0af7651916cd43dd8448eb211c80319c"
FIELD_SPAN = "b7ad6b7169203331"


@pytest.fixture
def otlp(monkeypatch):
    """An OTLP receiver, and tracing on in this process (the API's) and in every process started."""
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # export every 0.1 s, not every 5 s
        tracing.reset()
        yield receiver
        tracing.reset()  # flushes this process's spans, and turns tracing off again after the test
    monkeypatch.undo()
    tracing.reset()


def test_every_attempt_is_a_client_span_in_the_callers_trace(api, receiver, service, otlp):
    receiver.respond = lambda request: Reply(status=500) if request.seq == 1 else Reply()
    # The service's processes export only when they stop (or never, if a forked worker left without
    # flushing): a batch of spans waits up to ten minutes otherwise.
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "600000"}
    dispatcher = service("dispatcher", ["run_dispatcher"], **env)
    workers = service("workers", ["qcluster"], **env)
    url = receiver.url + "/hook?token=hunter2"

    header = {"HTTP_TRACEPARENT": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
    created = [
        api.post(
            "/api/v1/callbacks/",
            {"url": url, "body": {"n": n}, "backoff": {"initial_seconds": 0.2}},
            format="json",
            **header,
        )
        for n in range(2)
    ]
    created.append(
        api.post(
            "/api/v1/callbacks/",
            {
                "url": url,
                "traceparent": f"00-{FIELD_TRACE}-{FIELD_SPAN}-01",
                "backoff": {"initial_seconds": 0.2},
            },
            format="json",
            HTTP_TRACEPARENT=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
        )
    )
    assert [response.status_code for response in created] == [201, 201, 201], created[0].content
    ids = [response.json()["id"] for response in created]
    assert [response.json()["trace_id"] for response in created] == [CALLER_TRACE, CALLER_TRACE, FIELD_TRACE]

    wait_until(lambda: unfinished() == 0, timeout=120, message="every callback to end final")
    attempts = TaskExecution.objects.count()
    assert attempts == 4  # the first request's 500 was retried
    first = receiver.received[0].headers["x-callback-task-id"]
    assert otlp.of_kind("client") == []
    workers.stop()
    dispatcher.stop()
    wait_until(lambda: len(otlp.of_kind("client")) >= attempts, timeout=30, message="a span per attempt")
    tracing.flush()
    wait_until(lambda: len(otlp.of_kind("internal")) >= 3, timeout=30, message="the creation spans")

    creations = {span.attributes["callbacks.task_id"]: span for span in otlp.of_kind("internal")}
    stored = {
        str(task_id): parent for task_id, parent in CallbackTask.objects.values_list("id", "traceparent")
    }
    for task_id in ids:
        creation = creations[task_id]
        assert stored[task_id] == f"00-{creation.trace_id}-{creation.span_id}-01"
    assert (creations[ids[0]].trace_id, creations[ids[0]].parent_span_id) == (CALLER_TRACE, CALLER_SPAN)
    assert (creations[ids[2]].trace_id, creations[ids[2]].parent_span_id) == (FIELD_TRACE, FIELD_SPAN)

    clients = otlp.of_kind("client")
    assert len(clients) == attempts  # one span per attempt, no more
    by_task: dict = {}
    for span in clients:
        by_task.setdefault(span.attributes["callbacks.task_id"], []).append(span)
    assert sorted(len(spans) for spans in by_task.values()) == [1, 1, 2]
    for task_id, spans in by_task.items():
        creation = creations[task_id]
        for span in spans:
            assert (span.trace_id, span.parent_span_id) == (creation.trace_id, creation.span_id)
            assert span.service == "taskcenter-callbacks"
            assert span.name == "POST"
            assert span.attributes["http.request.method"] == "POST"
            assert span.attributes["url.full"] == receiver.url + "/hook?token=********"
            assert span.attributes["network.protocol.version"] == "1.1"
            assert span.attributes["callbacks.tenant"] == CallbackTask.objects.get(id=task_id).tenant.name
    retried = sorted(by_task[first], key=lambda span: span.attributes["callbacks.attempt"])
    assert [span.attributes["callbacks.attempt"] for span in retried] == [1, 2]
    assert [span.attributes["http.response.status_code"] for span in retried] == [500, 200]
    assert [span.attributes["callbacks.outcome"] for span in retried] == ["http_5xx", "success"]
    assert [span.status_code for span in retried] == [2, 0]  # the failed attempt is an error

    # What each receiver request carried continues the trace from the attempt's span.
    sent = {request.headers["traceparent"] for request in receiver.received}
    assert sent == {f"00-{span.trace_id}-{span.span_id}-01" for span in clients}

    # The dispatcher's spans link the lanes it handed out to the traces of their callbacks (a callback
    # a lane took by itself, after a response, passed no dispatcher).
    dispatched = otlp.of_kind("producer")
    assert dispatched and all(span.name == "callbacks dispatch" for span in dispatched)
    linked = {link for span in dispatched for link in span.links}
    assert linked & {(creations[task_id].trace_id, creations[task_id].span_id) for task_id in ids}
