"""The connection pools (callbacks/delivery/http/pools.py): connections counted in use and idle, kept-alive
connections reused, and not reused past the keep-alive limit."""

import threading

from callbacks.delivery import http
from tests.callbacks.delivery.http.sending import forget_pools, pooled_connection, send
from tests.receivers import Receiver, Reply


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
    forget_pools()
    send(receiver.url)
    first = pooled_connection(receiver).sock.getsockname()
    send(receiver.url)
    assert pooled_connection(receiver).sock.getsockname() == first


def test_an_idle_connection_past_the_keepalive_limit_is_not_reused(callbacks_settings, receiver):
    callbacks_settings(KEEPALIVE_IDLE_SECONDS=0)
    forget_pools()
    send(receiver.url)
    first = pooled_connection(receiver).sock.getsockname()
    send(receiver.url)
    assert pooled_connection(receiver).sock.getsockname() != first
    assert len(receiver.wait_for(2)) == 2
