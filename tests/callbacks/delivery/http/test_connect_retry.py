"""Connect-phase retries (callbacks/delivery/http/connect_retry.py): failures before anything is sent are
retried within the attempt, with a growing backoff and a budget; errors after sending are not."""

import socket
import threading

import pytest
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from callbacks.delivery import http
from tests.callbacks.delivery.http.sending import send


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
