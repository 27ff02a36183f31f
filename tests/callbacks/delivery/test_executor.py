"""send_attempt against real receivers on 127.0.0.1: what arrives, and how answers are classified."""

import email.utils
import re
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from callbacks.delivery import http
from callbacks.delivery.executor import build_headers, parse_retry_after, send_attempt
from callbacks.domain import encoding
from callbacks.masking import MASK
from tests.factories import make_task
from tests.receivers import Receiver, Reply, SilentListener

pytestmark = pytest.mark.django_db

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
BODIES = {
    "json": {"order": 42, "name": "Zoë", "items": [1, 2.5, None], "ok": True},
    "xml": '<?xml version="1.0"?><order id="42"><name>Zoë &amp; co</name></order>',
    "form": {"order": "42", "tags": ["a", "b c"], "paid": True, "name": "Zoë"},
    "raw": "line 1\r\nline 2 \x01 binary-ish ✓",
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("body_format", list(BODIES))
def test_every_method_and_body_format_arrives_byte_exact(tenant, receiver, method, body_format):
    payload = encoding.encode(BODIES[body_format], body_format)
    task = make_task(
        tenant=tenant, url=receiver.url + "/hook?x=1", method=method, body_format=body_format, payload=payload
    )

    result = send_attempt(task, attempt=1)

    assert result.outcome == "success", result.error
    got = receiver.wait_for(1)[0]
    assert got.method == method
    assert got.path == "/hook?x=1"
    assert got.body == payload.encode("utf-8")
    assert got.headers["content-type"] == encoding.CONTENT_TYPES[body_format]


def test_raw_and_xml_bodies_keep_the_callers_content_type(tenant, receiver):
    for body_format, content_type in [("raw", "text/plain; charset=utf-8"), ("xml", "text/xml")]:
        task = make_task(
            tenant=tenant,
            url=receiver.url,
            body_format=body_format,
            payload=encoding.encode(BODIES[body_format], body_format),
            headers={"content-type": content_type},
        )
        assert send_attempt(task, attempt=1).outcome == "success"
    first, second = receiver.wait_for(2)
    assert first.headers["content-type"] == "text/plain; charset=utf-8"
    assert second.headers["content-type"] == "text/xml"


def test_no_body_means_no_content_type(tenant, receiver):
    task = make_task(tenant=tenant, url=receiver.url, method="GET", payload="")
    assert send_attempt(task, attempt=1).outcome == "success"
    got = receiver.wait_for(1)[0]
    assert got.body == b""
    assert "content-type" not in got.headers


def test_receiver_headers_and_webhook_id_stable_across_attempts(tenant, receiver):
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    task = make_task(tenant=tenant, url=receiver.url, business_id="order-42", trace_id=trace)

    send_attempt(task, attempt=1)
    send_attempt(task, attempt=2)

    first, second = receiver.wait_for(2)
    for number, got in enumerate([first, second], start=1):
        assert got.headers["x-callback-task-id"] == str(task.id)
        assert got.headers["x-callback-attempt"] == str(number)
        assert got.headers["x-business-id"] == "order-42"
        assert got.headers["x-trace-id"] == trace
        assert re.fullmatch(r"taskcenter-callbacks/\d+\.\d+\.\d+", got.headers["user-agent"])
        assert re.fullmatch(r"\d+", got.headers["webhook-timestamp"])
        assert got.headers["webhook-signature"].startswith("v1,")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "msg_" + task.id.hex
    # W3C traceparent: the caller's trace id carried over, a new span per attempt.
    parts = [got.headers["traceparent"].split("-") for got in (first, second)]
    assert [p[0] for p in parts] == ["00", "00"]
    assert [p[1] for p in parts] == [trace, trace]
    assert parts[0][2] != parts[1][2]
    assert all(re.fullmatch(r"[0-9a-f]{16}", p[2]) for p in parts)


def test_a_trace_id_that_is_not_w3c_is_hashed_into_one(tenant):
    task = make_task(tenant=tenant, url="http://127.0.0.1:9/", trace_id="my trace")
    version, trace, span, flags = build_headers(task, 1, 0)["traceparent"].split("-")
    assert re.fullmatch(r"[0-9a-f]{32}", trace)
    assert trace == build_headers(task, 2, 0)["traceparent"].split("-")[1]


def test_custom_headers_arrive_secrets_masked_only_in_the_snapshot(tenant, receiver):
    task = make_task(
        tenant=tenant,
        url=receiver.url,
        headers={"X-Shop": "north", "Authorization": "Bearer s3cr3t-value", "X-Callback-Attempt": "99"},
    )

    result = send_attempt(task, attempt=3)

    got = receiver.wait_for(1)[0]
    assert got.headers["x-shop"] == "north"
    assert got.headers["authorization"] == "Bearer s3cr3t-value"
    # Our own headers cannot be overridden by the task's.
    assert got.headers["x-callback-attempt"] == "3"
    assert result.request_headers["X-Shop"] == "north"
    assert result.request_headers["Authorization"] == MASK
    assert result.request_headers["webhook-signature"] == MASK
    assert "s3cr3t" not in str(result)


def test_unsigned_when_the_tenant_has_no_secret(tenant, receiver):
    tenant.signing_secret = ""
    tenant.save()
    task = make_task(tenant=tenant, url=receiver.url)
    send_attempt(task, attempt=1)
    got = receiver.wait_for(1)[0]
    assert "webhook-signature" not in got.headers
    assert got.headers["webhook-id"] == "msg_" + task.id.hex


@pytest.mark.parametrize(
    ("status", "success_statuses", "outcome", "retryable"),
    [
        (200, "200-299", "success", False),
        (204, "200-299", "success", False),
        (202, "200", "http_unexpected", False),
        (404, "200,404", "success", False),
        (400, "200-299", "http_4xx", False),
        (404, "200-299", "http_4xx", False),
        (408, "200-299", "http_4xx", True),
        (429, "200-299", "http_4xx", True),
        (410, "200-299", "gone", False),
        (500, "200-299", "http_5xx", True),
        (503, "200-299", "http_5xx", True),
        (304, "200-299", "http_3xx", False),
    ],
)
def test_status_classification(tenant, status, success_statuses, outcome, retryable):
    with Receiver(Reply(status=status, body=b"" if status in (204, 304) else b"answer")) as receiver:
        task = make_task(tenant=tenant, url=receiver.url, success_statuses=success_statuses)
        result = send_attempt(task, attempt=1)
    assert (result.outcome, result.retryable, result.status_code) == (outcome, retryable, status)
    assert result.error == ("" if outcome == "success" else f"HTTP {status}")
    assert result.duration_ms > 0
    assert result.started_at.tzinfo is not None


def test_a_task_to_a_url_gone_ends_gone_without_a_request(tenant):
    listener = SilentListener()
    try:
        task = make_task(tenant=tenant, url=f"http://127.0.0.1:{listener.port}/hook")
        task.url_gone = True  # as the engine sets it when it starts the task

        result = send_attempt(task, attempt=1)

        assert (result.outcome, result.retryable, result.status_code) == ("gone", False, None)
        assert "410" in result.error and "not sent" in result.error
        assert listener.connections() == 0
    finally:
        listener.close()


def test_response_is_recorded(tenant):
    with Receiver(
        Reply(status=503, headers={"X-Reason": "maintenance"}, body=b"down \xff for now")
    ) as receiver:
        result = send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1)
    assert result.response_headers["X-Reason"] == "maintenance"
    assert result.response_body == "down \ufffd for now"
    assert result.response_truncated is False
    assert result.request_method == "POST"
    assert result.request_url == receiver.url


def test_a_redirect_is_an_outcome_and_is_not_followed(tenant, receiver):
    with Receiver(Reply(status=302, headers={"Location": receiver.url + "/elsewhere"})) as redirecting:
        result = send_attempt(make_task(tenant=tenant, url=redirecting.url), attempt=1)
    assert result.outcome == "http_3xx"
    assert result.retryable is False
    assert result.error == f"HTTP 302 (redirect to {receiver.url}/elsewhere not followed)"
    assert receiver.received == []


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds(tenant, status):
    with Receiver(Reply(status=status, headers={"Retry-After": "7"})) as receiver:
        result = send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1)
    assert result.retry_after == 7.0


def test_retry_after_as_http_date(tenant):
    when = datetime.now(UTC) + timedelta(seconds=120)
    with Receiver(
        Reply(status=503, headers={"Retry-After": email.utils.format_datetime(when, usegmt=True)})
    ) as r:
        result = send_attempt(make_task(tenant=tenant, url=r.url), attempt=1)
    assert 100 < result.retry_after <= 120


def test_retry_after_absent_or_invalid(tenant):
    with Receiver(Reply(status=503, headers={"Retry-After": "soon"})) as receiver:
        assert send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1).retry_after is None
    with Receiver(Reply(status=503)) as receiver:
        assert send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1).retry_after is None


def test_parse_retry_after():
    now = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after(" 0 ", now=now) == 0.0
    assert parse_retry_after("Tue, 01 Jan 2030 12:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Tue, 01 Jan 2030 11:00:00 GMT", now=now) == 0.0  # in the past: now
    for bad in ["", "-5", "1.5", "tomorrow", "Tue, 99 Foo 2030"]:
        assert parse_retry_after(bad, now=now) is None
    assert parse_retry_after(None, now=now) is None


def test_timeout_when_the_receiver_never_answers(tenant):
    with Receiver(Reply(hang=True)) as receiver:
        task = make_task(tenant=tenant, url=receiver.url, connect_timeout_seconds=1, total_timeout_seconds=1)
        result = send_attempt(task, attempt=1)
    assert (result.outcome, result.retryable, result.status_code) == ("timeout", True, None)
    assert result.error == "timed out after 1.0 s (total deadline)", result


def test_timeout_when_the_receiver_trickles_slower_than_the_deadline(tenant):
    # A byte every 0.2 s never trips a per-recv read timeout of 1 s; only the total deadline cuts it.
    with Receiver(Reply(body=b"x" * 50, trickle=0.2)) as receiver:
        task = make_task(tenant=tenant, url=receiver.url, connect_timeout_seconds=1, total_timeout_seconds=1)
        result = send_attempt(task, attempt=1)
        assert receiver.wait_for(1)
    assert result.outcome == "timeout", result
    assert result.error == "timed out after 1.0 s (total deadline)", result


def test_timeout_when_the_receiver_is_slow_to_send_its_headers(tenant):
    with Receiver(Reply(delay=5)) as receiver:
        task = make_task(tenant=tenant, url=receiver.url, connect_timeout_seconds=1, total_timeout_seconds=1)
        result = send_attempt(task, attempt=1)
    assert result.outcome == "timeout", result


def test_a_trickle_within_the_deadline_succeeds(tenant):
    with Receiver(Reply(body=b"abc", trickle=0.01)) as receiver:
        result = send_attempt(make_task(tenant=tenant, url=receiver.url, total_timeout_seconds=5), attempt=1)
    assert result.outcome == "success"
    assert result.response_body == "abc"


def test_a_5mb_response_is_kept_as_1mb_and_the_connection_released(tenant, callbacks_settings):
    callbacks_settings(RESPONSE_BODY_LIMIT=1024 * 1024)
    with Receiver(
        lambda got: Reply(body_size=5 * 1024 * 1024) if got.seq == 1 else Reply(body=b"next")
    ) as receiver:
        big = send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1)
        after = send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1)
        state = http.pool_state()
    assert big.outcome == "success"
    assert big.response_truncated is True
    assert len(big.response_body) == 1024 * 1024
    assert after.outcome == "success"
    assert after.response_body == "next"
    assert after.response_truncated is False
    assert state["active"] == 0


def test_a_body_exactly_at_the_limit_is_not_truncated(tenant, callbacks_settings):
    callbacks_settings(RESPONSE_BODY_LIMIT=1000)
    with Receiver(lambda got: Reply(body_size=1000 + got.seq - 1)) as receiver:
        exact = send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1)
        over = send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1)
    assert (len(exact.response_body), exact.response_truncated) == (1000, False)
    assert (len(over.response_body), over.response_truncated) == (1000, True)


def test_refused_connection(tenant):
    # A bound socket that does not listen: its port is ours, and connecting to it is refused.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        result = send_attempt(make_task(tenant=tenant, url=f"http://127.0.0.1:{port}/"), attempt=1)
    assert (result.outcome, result.retryable, result.error) == ("connection", True, "connection refused")


def test_reset_connection_is_not_resent_within_the_attempt(tenant):
    with Receiver(Reply(reset=True)) as receiver:
        result = send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1)
        received = list(receiver.received)
    assert (result.outcome, result.retryable, result.error) == (
        "connection",
        True,
        "connection reset by peer",
    )
    assert len(received) == 1  # the body went out once: no retry after the request was sent


def test_unresolvable_host(tenant):
    result = send_attempt(make_task(tenant=tenant, url="http://no-such-host.invalid/"), attempt=1)
    assert (result.outcome, result.retryable) == ("connection", True)
    assert result.error == "could not resolve host no-such-host.invalid"


def test_unexpected_errors_become_an_outcome(tenant, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(http, "send", broken)
    result = send_attempt(make_task(tenant=tenant, url="http://127.0.0.1:9/"), attempt=1)
    assert (result.outcome, result.error) == ("error", "internal error: RuntimeError: boom")


def test_secrets_in_the_url_are_masked_in_the_snapshot(tenant, receiver):
    url = receiver.url.replace("http://", "http://user:hunter2@")
    result = send_attempt(make_task(tenant=tenant, url=url), attempt=1)
    assert result.outcome == "success"
    assert "hunter2" not in result.request_url
    assert receiver.wait_for(1)[0].headers["authorization"].startswith("Basic ")


def test_concurrent_attempts_share_the_session(tenant, receiver):
    tasks = [make_task(tenant=tenant, url=receiver.url) for _ in range(20)]
    results = [None] * len(tasks)

    def run(index):
        results[index] = send_attempt(tasks[index], attempt=1)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(tasks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.outcome for r in results] == ["success"] * len(tasks)
    assert {got.headers["x-callback-task-id"] for got in receiver.wait_for(20)} == {str(t.id) for t in tasks}
    assert uuid.UUID(results[0].request_headers["X-Callback-Task-Id"])


def test_a_redirect_body_is_capped_like_any_other(tenant, callbacks_settings):
    callbacks_settings(RESPONSE_BODY_LIMIT=1000)
    with Receiver(Reply(status=302, headers={"Location": "/next"}, body_size=5 * 1024 * 1024)) as receiver:
        result = send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1)
    assert (result.outcome, len(result.response_body), result.response_truncated) == ("http_3xx", 1000, True)


def test_receivers_cookies_are_not_kept(tenant):
    with Receiver(Reply(headers={"Set-Cookie": "session=abc; Path=/"})) as receiver:
        send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1)
        send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1)
        second = receiver.wait_for(2)[1]
    assert "cookie" not in second.headers


def test_timeout_when_the_receiver_trickles_its_headers(tenant):
    """A byte of header every 0.2 s: no single recv waits long, so only the deadline watchdog
    (which shuts the socket down) ends the attempt on time."""
    stop = threading.Event()
    server = socket.create_server(("127.0.0.1", 0))

    def trickle_headers():
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(40):  # 8 s of header; then a proper end, so a missed deadline shows
                if stop.wait(0.2):
                    return
                try:
                    conn.sendall(b"a")
                except OSError:
                    return
            conn.sendall(b"\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=trickle_headers, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.getsockname()[1]}/"
        task = make_task(tenant=tenant, url=url, connect_timeout_seconds=1, total_timeout_seconds=1)
        result = send_attempt(task, attempt=1)
    finally:
        stop.set()
        server.close()
        thread.join(5)
    assert result.outcome == "timeout", result
    assert result.error == "timed out after 1.0 s (total deadline)", result


@pytest.mark.parametrize("value", ["²", "³", "1²", "٣٠".encode().decode("latin-1")])
def test_retry_after_in_other_scripts_digits_is_ignored_and_the_answer_recorded(tenant, value):
    """str.isdigit() takes "²" for a digit and int("²") raises: the 200 used to be lost. (Header bytes
    are read as Latin-1, so the UTF-8 of Arabic-Indic digits arrives as other characters.)"""
    with Receiver(Reply(status=200, headers={"Retry-After": value})) as receiver:
        result = send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1)
    assert (result.outcome, result.status_code, result.retry_after) == ("success", 200, None)


def test_parse_retry_after_takes_ascii_digits_only():
    for value in ["²", "١٢", "٣٠", "1²", "１２"]:
        assert parse_retry_after(value) is None


def test_a_retry_after_too_long_for_int_is_a_long_wait():
    assert parse_retry_after("9" * 5000) >= 10**12


def test_stored_response_headers_are_capped(tenant, callbacks_settings):
    """A receiver's headers used to be stored whole: up to 6.5 MB for one attempt."""
    callbacks_settings(RESPONSE_HEADERS_LIMIT=4096)
    filler = {f"X-Filler-{index}": "a" * 1000 for index in range(10)}
    with Receiver(Reply(status=200, headers={"Set-Cookie": "session=abc", **filler})) as receiver:
        result = send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1)
    assert (result.outcome, result.status_code) == ("success", 200)
    assert sum(len(name) + len(value) for name, value in result.response_headers.items()) <= 4096
    assert result.response_headers["Set-Cookie"] == MASK
    assert result.response_truncated is True


def test_stored_headers_leave_out_what_does_not_fit(callbacks_settings):
    """The stored cap holds whatever read the headers (the HTTP/1.1 reader has its own bound too)."""
    callbacks_settings(RESPONSE_HEADERS_LIMIT=1024)
    headers = {"X-Big": "a" * 2000, "Set-Cookie": "s=1", **{f"X-{index}": "b" for index in range(200)}}
    from callbacks.delivery.executor import stored_headers

    kept, cut = stored_headers(headers)
    assert cut is True
    assert "X-Big" not in kept and kept["Set-Cookie"] == MASK
    assert len(kept) <= 100
    assert stored_headers({"X-Small": "b"}) == ({"X-Small": "b"}, False)


def test_an_error_reading_the_answer_keeps_its_status_and_is_not_retried(tenant, monkeypatch):
    """Our own bug after the receiver answered must not turn a delivered callback into a retry."""
    from callbacks.delivery import executor

    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(executor, "parse_retry_after", broken)
    with Receiver(Reply(status=200)) as receiver:
        result = send_attempt(make_task(tenant=tenant, url=receiver.url), attempt=1)
    assert (result.outcome, result.status_code, result.retryable) == ("success", 200, False)
    assert "internal error: RuntimeError: bug" in result.error
