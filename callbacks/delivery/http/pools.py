"""Connection pools of the session: SSRF-checked connections that report their socket to the
running attempt's deadline watch, pools that count connections in use (for pool_state) and retire
idle keep-alive connections.

`pool_connections` counts per-host pools, not connections; `pool_maxsize` is connections kept per
host. Non-blocking pools open an extra connection beyond maxsize when needed (requests gives
blocking pools no timeout, so they could wait forever).
"""

import threading
import time

from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from callbacks import conf
from callbacks.delivery.http.deadline import current_watch, process_watchdog
from callbacks.delivery.http.heads import BoundedHeadResponse
from callbacks.delivery.http.resolver import lookup_within_deadline
from callbacks.delivery.ssrf import GuardedHTTPConnection, GuardedHTTPSConnection


class _WatchedConnectionMixin:
    """Reports the socket in use to the running attempt's watch (new or reused connection), resolves
    names within the attempt's deadline and reads response heads within bounds."""

    response_class = BoundedHeadResponse

    def lookup(self, host: str, port: int, family: int, socktype: int) -> list[tuple]:
        return lookup_within_deadline(self, host, port, family, socktype)

    def connect(self) -> None:
        super().connect()
        self._report_socket()

    def request(self, *args, **kwargs):
        if self.sock is not None:
            self._report_socket()
        return super().request(*args, **kwargs)

    def _report_socket(self) -> None:
        watch = current_watch()
        if watch is not None:
            process_watchdog().attach(watch, self.sock)


class _Connection(_WatchedConnectionMixin, GuardedHTTPConnection):
    pass


class _TLSConnection(_WatchedConnectionMixin, GuardedHTTPSConnection):
    pass


class _TrackedPoolMixin:
    """Counts connections in use (for pool_state) and retires idle keep-alive connections.

    A connection idle longer than KEEPALIVE_IDLE_SECONDS is closed instead of reused: the
    receiver (or a load balancer) has probably dropped it, and a request written into a
    half-closed connection fails after the body is sent, which we never retry within an
    attempt. Closing it makes urllib3 open a fresh, SSRF-checked connection.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.active = 0
        self._active_lock = threading.Lock()

    def _get_conn(self, timeout=None):
        conn = super()._get_conn(timeout)
        idle_since = getattr(conn, "idle_since", None)
        if idle_since is not None and time.monotonic() - idle_since > conf.get("KEEPALIVE_IDLE_SECONDS"):
            conn.close()
        with self._active_lock:
            self.active += 1
        return conn

    def _put_conn(self, conn) -> None:
        # The connection leaves this attempt (urllib3 returns it as soon as the body is read):
        # from now on another attempt may use its socket, so the watchdog must forget it.
        watch = current_watch()
        if watch is not None:
            process_watchdog().detach(watch)
        with self._active_lock:
            self.active = max(self.active - 1, 0)
        if conn is not None:
            conn.idle_since = time.monotonic()
        super()._put_conn(conn)

    def idle(self) -> int:
        queue = self.pool
        if queue is None:
            return 0
        with queue.mutex:
            return sum(1 for conn in queue.queue if conn is not None and conn.sock is not None)


class _Pool(_TrackedPoolMixin, HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(_TrackedPoolMixin, HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


class Adapter(HTTPAdapter):
    """The session's adapter for one TLS identity (tls.py): its pools verify with that identity's
    trust and present its client certificate, and serve no other identity. With an HTTP/2
    transport (http2.py), HTTPS requests go to origins that speak HTTP/2 as streams; the others
    come to these pools."""

    def __init__(self, *args, ssl_context=None, http2=None, **kwargs):
        self._ssl_context = ssl_context
        self.http2 = http2
        super().__init__(*args, **kwargs)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        if self._ssl_context is not None:
            pool_kwargs["ssl_context"] = self._ssl_context
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)
        # Our pools open SSRF-checked, deadline-watched connections.
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}

    def send(self, request, **kwargs):
        if self.http2 is not None and request.url[:8].lower() == "https://":
            response = self.http2.send(self, request, **kwargs)
            if response is not None:
                return response
        return super().send(request, **kwargs)

    def close(self) -> None:
        super().close()
        if self.http2 is not None:
            self.http2.close()
