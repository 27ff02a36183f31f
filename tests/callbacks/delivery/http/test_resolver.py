"""Name resolution within the attempt's deadline (callbacks/delivery/http/resolver.py).

A slow DNS server cannot be arranged here (the system resolver's configuration is the machine's), so
getaddrinfo is replaced for one name by a lookup that answers only when the test lets it: what is
under test is that the attempt does not wait for it. The receiver it would lead to is real.
"""

import socket
import threading

import pytest

from callbacks.delivery.executor import send_attempt
from tests.factories import make_task
from tests.receivers import Receiver

pytestmark = pytest.mark.django_db

SLOW_NAME = "slow-dns.example.test"


@pytest.fixture
def slow_resolver(monkeypatch):
    """getaddrinfo of SLOW_NAME blocks until `release` is set (10 s at most), then answers 127.0.0.1."""
    real = socket.getaddrinfo
    release, answered = threading.Event(), threading.Event()

    def lookup(host, port, *args, **kwargs):
        if host != SLOW_NAME:
            return real(host, port, *args, **kwargs)
        release.wait(10)
        answered.set()
        return real("127.0.0.1", port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    yield release, answered
    release.set()


def test_a_slow_lookup_ends_the_attempt_at_its_deadline(tenant, receiver, slow_resolver):
    release, answered = slow_resolver
    task = make_task(
        tenant=tenant,
        url=f"http://{SLOW_NAME}:{receiver.port}/hook",
        connect_timeout_seconds=1,
        total_timeout_seconds=1,
    )

    result = send_attempt(task, attempt=1)

    assert not answered.is_set()  # the attempt ended while the lookup was still under way
    assert (result.outcome, result.error) == ("timeout", "timed out after 1.0 s (total deadline)")
    assert result.retryable is True
    release.set()
    assert answered.wait(10)
    assert receiver.received == []


def test_a_lookup_within_the_deadline_connects(tenant, slow_resolver):
    release, _ = slow_resolver
    release.set()
    with Receiver() as receiver:
        task = make_task(tenant=tenant, url=f"http://{SLOW_NAME}:{receiver.port}/hook")
        result = send_attempt(task, attempt=1)
        assert (result.outcome, result.status_code) == ("success", 200)
        assert receiver.wait_for(1)[0].headers["host"] == f"{SLOW_NAME}:{receiver.port}"
