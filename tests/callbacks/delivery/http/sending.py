"""Helpers for the HTTP tests: one request through callbacks.delivery.http.send, and the one pooled
connection to a receiver."""

from callbacks.delivery import http
from callbacks.delivery.http import session as http_session


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


def forget_pools():
    """Drops every pool of this process's Session: a pool left by an earlier test's receiver on a port the OS has
    since handed to this test's receiver would otherwise be a second pool for the same origin."""
    for adapter in http_session.process().adapters():
        adapter.poolmanager.clear()
        if adapter.http2 is not None:
            adapter.http2.close()  # its connections, and which origins speak HTTP/1.1


def pooled_connection(receiver):
    pools = http_session.process().adapter.poolmanager.pools
    with pools.lock:
        [pool] = [pool for pool in pools._container.values() if pool.port == receiver.port]
    with pool.pool.mutex:
        connections = [conn for conn in pool.pool.queue if conn is not None and conn.sock is not None]
    assert len(connections) == 1
    return connections[0]
