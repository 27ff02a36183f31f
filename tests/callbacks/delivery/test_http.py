"""The per-process session: pools, keep-alive expiry, connect-phase retries, TLS, fork safety."""

import os
import socket
import threading
import time

import pytest
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from callbacks.delivery import http
from callbacks.delivery.executor import send_attempt
from callbacks.delivery.http import attempt as http_attempt
from callbacks.delivery.http import session as http_session
from tests.factories import make_task
from tests.receivers import Receiver, Reply


def send(url, **overrides):
    arguments = {
        "method": "POST",
        "url": url,
        "headers": {},
        "body": b"hello",
        "connect_timeout": 2,
        "total_timeout": 5,
        "body_limit": 1000,
    }
    arguments.update(overrides)
    return http.send(**arguments)


def pooled_connection(receiver):
    pools = http_session.process().adapter.poolmanager.pools
    with pools.lock:
        [pool] = [pool for pool in pools._container.values() if pool.port == receiver.port]
    with pool.pool.mutex:
        connections = [conn for conn in pool.pool.queue if conn is not None and conn.sock is not None]
    assert len(connections) == 1
    return connections[0]


def test_session_settings():
    session = http.get_session()
    assert session.trust_env is False
    adapter = session.get_adapter("https://example.com/")
    assert adapter is session.get_adapter("http://example.com/")
    assert isinstance(adapter.max_retries, http.ConnectPhaseRetry)
    assert adapter._pool_maxsize == 20 and adapter._pool_connections == 100 and adapter._pool_block is False


def test_pool_state_counts_connections_in_use_and_idle():
    release = threading.Event()

    def slow(got):
        release.wait(10)
        return Reply()

    with Receiver(slow) as receiver:
        worker = threading.Thread(target=send, args=(receiver.url,))
        worker.start()
        receiver.wait_for(1)
        during = http.pool_state()
        release.set()
        worker.join()
        after = http.pool_state()
    assert during["active"] >= 1
    assert during["pools"] >= 1
    assert after["active"] == during["active"] - 1
    assert after["idle"] >= 1


def test_a_kept_alive_connection_is_reused(callbacks_settings, receiver):
    callbacks_settings(KEEPALIVE_IDLE_SECONDS=3600)
    send(receiver.url)
    first = pooled_connection(receiver).sock.getsockname()
    send(receiver.url)
    assert pooled_connection(receiver).sock.getsockname() == first


def test_an_idle_connection_past_the_keepalive_limit_is_not_reused(callbacks_settings, receiver):
    callbacks_settings(KEEPALIVE_IDLE_SECONDS=0)
    send(receiver.url)
    first = pooled_connection(receiver).sock.getsockname()
    send(receiver.url)
    assert pooled_connection(receiver).sock.getsockname() != first
    assert len(receiver.wait_for(2)) == 2


def test_connect_phase_failures_are_retried_within_the_attempt(monkeypatch):
    """The first connect is refused; the listener appears during the retry's wait; the POST
    then goes out exactly once."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]
    requests_seen = []
    waits = []

    def answer():
        conn, _ = server.accept()
        with conn:
            data = b""
            while not data.endswith(b"hello"):
                data += conn.recv(65536)
            requests_seen.append(data)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    real_sleep = http.ConnectPhaseRetry.sleep

    def sleep_then_listen(self, response=None):
        waits.append(self.get_backoff_time())
        if len(waits) == 1:
            server.listen(1)
            threading.Thread(target=answer, daemon=True).start()
        real_sleep(self, response)

    monkeypatch.setattr(http.ConnectPhaseRetry, "sleep", sleep_then_listen)
    try:
        raw = send(f"http://127.0.0.1:{port}/")
    finally:
        server.close()
    assert (raw.status_code, raw.body) == (200, b"ok")
    assert waits == [0.1]
    assert len(requests_seen) == 1


def test_connect_phase_retry_backoff_grows_by_half_from_a_small_base():
    retry = http.ConnectPhaseRetry.for_connect_phase(10)
    waits = []
    for _ in range(8):
        retry = retry.increment("POST", "/", error=NewConnectionError(None, "refused"))
        assert isinstance(retry, http.ConnectPhaseRetry)
        waits.append(retry.get_backoff_time())
    assert waits[:4] == pytest.approx([0.1, 0.15, 0.225, 0.3375])
    assert waits[-1] == 1.0


def test_connect_phase_retry_gives_up_after_its_budget():
    retry = http.ConnectPhaseRetry.for_connect_phase(2)
    retry = retry.increment("POST", "/", error=NewConnectionError(None, "refused"))
    retry = retry.increment("POST", "/", error=NewConnectionError(None, "refused"))
    with pytest.raises(MaxRetryError):
        retry.increment("POST", "/", error=NewConnectionError(None, "refused"))


def test_connect_timeouts_are_not_retried():
    with pytest.raises(MaxRetryError) as caught:
        http.ConnectPhaseRetry.for_connect_phase(2).increment("POST", "/", error=ConnectTimeoutError("slow"))
    assert isinstance(caught.value.reason, ConnectTimeoutError)


@pytest.mark.parametrize("error", [ReadTimeoutError(None, "/", "slow"), ProtocolError("Connection aborted.")])
def test_errors_after_sending_are_raised_unchanged(error):
    # Never retried (the body may have been received), and kept as themselves so that
    # requests reports a read timeout as a timeout.
    with pytest.raises(type(error)):
        http.ConnectPhaseRetry.for_connect_phase(2).increment("POST", "/", error=error)


@pytest.mark.django_db
def test_tls_with_an_untrusted_certificate_fails_as_tls(tenant, https_receiver):
    url = f"https://127.0.0.1:{https_receiver.port}/"
    result = send_attempt(make_task(tenant=tenant, url=url), attempt=1)
    assert (result.outcome, result.retryable) == ("tls", False)
    assert "certificate verify failed" in result.error
    assert https_receiver.received == []


@pytest.mark.django_db
def test_tls_with_the_configured_ca_bundle_succeeds(
    tenant, https_receiver, self_signed_cert, callbacks_settings
):
    callbacks_settings(CA_BUNDLE=str(self_signed_cert[0]))
    url = f"https://127.0.0.1:{https_receiver.port}/secure"
    result = send_attempt(make_task(tenant=tenant, url=url, payload='{"a":1}'), attempt=1)
    assert result.outcome == "success", result.error
    got = https_receiver.wait_for(1)[0]
    assert (got.path, got.body) == ("/secure", b'{"a":1}')


@pytest.mark.django_db
def test_tls_checks_the_host_name(tenant, https_receiver, self_signed_cert, callbacks_settings):
    # The certificate names 127.0.0.1 only: trusted, but not for "localhost".
    callbacks_settings(CA_BUNDLE=str(self_signed_cert[0]))
    url = f"https://localhost:{https_receiver.port}/"
    result = send_attempt(make_task(tenant=tenant, url=url), attempt=1)
    assert result.outcome == "tls"
    assert "localhost" in result.error or "hostname" in result.error
    assert https_receiver.received == []


def test_a_forked_process_builds_its_own_session(receiver):
    send(receiver.url)
    parent_session = http.get_session()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, never return into pytest
        code = 1
        try:
            fresh = http_session._state is None
            raw = send(receiver.url)
            code = 0 if fresh and raw.status_code == 200 and http.get_session() is not parent_session else 2
        finally:
            os.write(write_end, bytes([code]))
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child did not finish")
    assert os.read(read_end, 1) == b"\x00"
    os.close(read_end)
    assert os.waitstatus_to_exitcode(status) == 0
    assert http.get_session() is parent_session
    assert len(receiver.wait_for(2)) == 2


@pytest.mark.parametrize(
    "method, url, headers, body",
    [
        ("post", "http://example.com/hook?a=1&b=%2F", {"Content-Type": "application/json"}, b'{"x":1}'),
        ("GET", "http://example.com/p a th/ünï?q=ä b", {"X-Trace": "t"}, b""),
        ("PUT", "https://user:p%40ss@bücher.example:8443/x", {}, b"a=1&b=2"),
        ("DELETE", "http://example.com", {"Accept": "*/*"}, b""),
    ],
)
def test_requests_are_prepared_as_the_session_would(method, url, headers, body):
    """attempt._prepare skips Session.prepare_request's merging; what goes on the wire must not change."""
    import requests

    expected = requests.Session().prepare_request(
        requests.Request(method, url, headers=headers, data=body or None)
    )

    prepared = http_attempt._prepare(method, url, headers, body)

    assert (prepared.method, prepared.url, prepared.body) == (expected.method, expected.url, expected.body)
    assert dict(prepared.headers) == dict(expected.headers)


def test_header_values_with_line_breaks_are_refused_before_sending():
    import requests

    with pytest.raises(requests.exceptions.InvalidHeader):
        http_attempt._prepare("POST", "http://example.com/", {"X-Evil": "a\r\nInjected: 1"}, b"")
