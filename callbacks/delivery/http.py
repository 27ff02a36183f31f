"""The HTTP client (R1, R2, R5-R8, R30): one tuned requests.Session per process, and `send`,
which makes one attempt within a hard total deadline and keeps at most `body_limit` bytes.

Why it looks like this (ARCHITECTURE.md, "Facts worth knowing"):
- requests has no total timeout: its read timeout is per recv, so a receiver that trickles a
  byte now and then holds a worker indefinitely. A watchdog thread shuts the socket down at
  the deadline, whether the receiver is slow to read our body, to send its headers or to
  send its body; the body loop also checks the deadline between chunks.
- `pool_connections` counts per-host pools, not connections; `pool_maxsize` is connections
  kept per host. Non-blocking pools open an extra connection beyond maxsize when needed
  (requests gives blocking pools no timeout, so they could wait forever).
- urllib3 retries only the connection phase (nothing was sent yet); real retries are durable,
  scheduled by retry.py in the database.
- Redirects are never followed (a 3xx is an outcome), proxies from the environment are
  ignored (trust_env False: a proxy would hide the target from the SSRF guard), TLS
  verification is always on.
"""

import functools
import heapq
import itertools
import os
import socket
import threading
import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ReadTimeoutError
from urllib3.util.retry import Retry

from callbacks import conf
from callbacks.delivery.ssrf import GuardedHTTPConnection, GuardedHTTPSConnection

CHUNK_SIZE = 64 * 1024


class TotalTimeout(requests.exceptions.Timeout):
    """The attempt's total deadline (connect + send + headers + body) passed."""

    def __init__(self, seconds: float):
        super().__init__(f"timed out after {float(seconds)} s (total deadline)")
        self.seconds = seconds


@dataclass
class RawResponse:
    status_code: int
    headers: dict
    body: bytes  # at most body_limit bytes
    truncated: bool  # the receiver sent more than body_limit bytes
    duration_ms: float


# --- the deadline watchdog --------------------------------------------------------------------


class _Watch:
    """One attempt's deadline and the socket it is using."""

    __slots__ = ("cut", "deadline", "done", "expired", "sock")

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.sock = None
        self.done = False
        self.expired = False  # the deadline passed
        self.cut = False  # ...and the watchdog shut the attempt's socket down


class _Watchdog:
    """One thread per process that shuts down the sockets of attempts past their deadline.

    shutdown() makes a blocked send/recv in the attempt's thread return at once, so the
    attempt ends with a connection error that `send` reports as the deadline. A connection
    is detached from its attempt's watch (under the lock) before it goes back to the pool, so
    the watchdog never touches a socket another attempt has taken over.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, watch: _Watch) -> None:
        with self._cond:
            earliest = not self._heap or watch.deadline < self._heap[0][0]
            heapq.heappush(self._heap, (watch.deadline, next(self._seq), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="callbacks-deadline", daemon=True)
                self._thread.start()
            if earliest:
                self._cond.notify()

    def attach(self, watch: _Watch, sock) -> None:
        with self._cond:
            if watch.done:
                return
            watch.sock = sock
            if watch.expired:
                watch.cut = True
                _shutdown(sock)

    def detach(self, watch: _Watch) -> None:
        with self._cond:
            watch.sock = None

    def finish(self, watch: _Watch) -> None:
        with self._cond:
            watch.done = True
            watch.sock = None

    def expire_all(self) -> int:
        """Bring every attempt's deadline forward to now (a worker stopping past its grace
        period); returns how many attempts were under way."""
        with self._cond:
            pending = [watch for _, _, watch in self._heap if not watch.done]
            for watch in pending:
                watch.deadline = time.monotonic()
            self._heap = [(watch.deadline, next(self._seq), watch) for watch in pending]
            heapq.heapify(self._heap)
            self._cond.notify()
            return len(pending)

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                _, _, watch = heapq.heappop(self._heap)
                watch.expired = True
                if watch.sock is not None:
                    watch.cut = True
                    _shutdown(watch.sock)


def _shutdown(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to interrupt


# The attempt running in this thread, so that connections can report their socket to it.
_current = threading.local()


def _current_watch() -> _Watch | None:
    return getattr(_current, "watch", None)


# --- connections and pools ---------------------------------------------------------------------


class _WatchedConnectionMixin:
    """Reports the socket in use to the running attempt's watch (new or reused connection)."""

    def connect(self) -> None:
        super().connect()
        self._report_socket()

    def request(self, *args, **kwargs):
        if self.sock is not None:
            self._report_socket()
        return super().request(*args, **kwargs)

    def _report_socket(self) -> None:
        watch = _current_watch()
        if watch is not None:
            _process().watchdog.attach(watch, self.sock)


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
        watch = _current_watch()
        if watch is not None:
            _process().watchdog.detach(watch)
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


# --- retries inside one attempt ------------------------------------------------------------------


class ConnectPhaseRetry(Retry):
    """urllib3 retries for failures before any byte of the request was sent, and nothing else.

    A refused or reset connect, or a failed DNS lookup, is often a receiver restarting or a
    brief network blip: trying again a moment later, inside the same attempt, saves a durable
    retry that would wait a second or more. The waits start small (0.1 s) and grow x1.5, capped
    at 1 s, because a worker thread sleeps through them; urllib3's own formula would wait 0
    first and then double. A connect that timed out is not retried (it already used its time)
    and no retry starts past the attempt's deadline. Read errors are re-raised unchanged
    (read=False) rather than counted, so requests still reports a read timeout as a timeout,
    and a request body is never sent twice within one attempt.
    """

    BACKOFF_BASE = 0.1
    BACKOFF_GROWTH = 1.5
    BACKOFF_CAP = 1.0

    @classmethod
    def for_connect_phase(cls, retries: int) -> "ConnectPhaseRetry":
        return cls(
            total=retries,
            connect=retries,
            read=False,
            status=0,
            redirect=0,
            other=0,
            allowed_methods=None,  # every method: nothing was sent
            raise_on_redirect=False,
            raise_on_status=False,
            respect_retry_after_header=False,
        )

    def get_backoff_time(self) -> float:
        return self._backoff_for(len(self.history))

    def _backoff_for(self, retry_number: int) -> float:
        if retry_number <= 0:
            return 0.0
        return min(self.BACKOFF_CAP, self.BACKOFF_BASE * self.BACKOFF_GROWTH ** (retry_number - 1))

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if error is not None and self._is_connection_error(error) and not self._worth_retrying(error):
            raise MaxRetryError(_pool, url, error) from error
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def _worth_retrying(self, error: Exception) -> bool:
        if isinstance(error, ConnectTimeoutError) and not isinstance(error, NewConnectionError):
            return False
        watch = _current_watch()
        if watch is None:
            return True
        return time.monotonic() + self._backoff_for(len(self.history) + 1) < watch.deadline


# --- the per-process session ---------------------------------------------------------------------


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)
        # Our pools open SSRF-checked, deadline-watched connections.
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}


@dataclass
class _ProcessState:
    pid: int
    session: requests.Session
    adapter: _Adapter
    watchdog: _Watchdog
    config: tuple  # the pool settings it was built with


_state: _ProcessState | None = None
_state_lock = threading.Lock()


def _forget_after_fork() -> None:
    # A forked worker must not share sockets with its parent, and the watchdog thread did not
    # survive the fork: everything is rebuilt on first use.
    global _state, _state_lock
    _state = None
    _state_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def _pool_config() -> tuple:
    return (conf.get("POOL_HOSTS"), conf.get("POOL_MAXSIZE_PER_HOST"), conf.get("CONNECT_RETRIES"))


def _process() -> _ProcessState:
    global _state
    state = _state
    config = _pool_config()
    if state is not None and state.pid == os.getpid() and state.config == config:
        return state
    with _state_lock:
        if _state is None or _state.pid != os.getpid():
            _state = _build_state(config)
        elif _state.config != config:
            # Pool sizes changed at run time (R39): a new adapter for new requests; requests in
            # flight keep the old one, whose connections close as they are dropped.
            _state = _build_state(config, watchdog=_state.watchdog)
        return _state


def _build_state(config: tuple, watchdog=None) -> _ProcessState:
    pool_hosts, pool_maxsize, connect_retries = config
    adapter = _Adapter(
        pool_connections=pool_hosts,
        pool_maxsize=pool_maxsize,
        pool_block=False,
        max_retries=ConnectPhaseRetry.for_connect_phase(connect_retries),
    )
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return _ProcessState(
        pid=os.getpid(), session=session, adapter=adapter, watchdog=watchdog or _Watchdog(), config=config
    )


def abort_in_flight() -> int:
    """End every attempt of this process now, as if its deadline had come (shutdown, R24)."""
    state = _state
    if state is None or state.pid != os.getpid():
        return 0
    return state.watchdog.expire_all()


def get_session() -> requests.Session:
    """This process's tuned session (for callers that need it directly, e.g. the benchmark)."""
    return _process().session


def pool_state() -> dict:
    """Connections of this process: in use, idle in the pools, and how many host pools (R21)."""
    pools = _process().adapter.poolmanager.pools
    with pools.lock:
        host_pools = list(pools._container.values())
    return {
        "active": sum(pool.active for pool in host_pools),
        "idle": sum(pool.idle() for pool in host_pools),
        "pools": len(host_pools),
    }


# --- one attempt ---------------------------------------------------------------------------------


def send(
    *,
    method: str,
    url: str,
    headers: dict,
    body: bytes,
    connect_timeout: float,
    total_timeout: float,
    body_limit: int,
) -> RawResponse:
    """Send one request; raises requests exceptions (TotalTimeout for the deadline) or SsrfBlocked."""
    state = _process()
    started = time.perf_counter()
    watch = _Watch(time.monotonic() + total_timeout)
    state.watchdog.add(watch)
    _current.watch = watch
    try:
        # The adapter is called directly rather than through Session.send: even with
        # allow_redirects=False, Session.send reads a redirect's whole body (uncapped) to
        # prepare the next request, and it would keep receivers' cookies in the session jar.
        prepared = _prepare(method, url, headers, body)
        response = state.session.get_adapter(prepared.url).send(
            prepared,
            stream=True,
            timeout=(min(connect_timeout, total_timeout), total_timeout),
            verify=conf.get("CA_BUNDLE") or True,
            proxies={},
        )
        with response:
            content, truncated = _read_body(response, body_limit, watch, total_timeout)
            if watch.cut:
                # http.client takes an end of stream inside the headers for their end, so
                # a response cut short by the watchdog can look complete: it is not.
                raise TotalTimeout(total_timeout)
            return RawResponse(
                status_code=response.status_code,
                headers=dict(response.headers),
                body=content,
                truncated=truncated,
                duration_ms=(time.perf_counter() - started) * 1000,
            )
    except requests.RequestException as exc:
        if watch.expired and not isinstance(exc, TotalTimeout):
            raise TotalTimeout(total_timeout) from exc
        raise
    finally:
        _current.watch = None
        state.watchdog.finish(watch)


def _prepare(method: str, url: str, headers: dict, body: bytes) -> requests.PreparedRequest:
    """The request as the adapter sends it. Session.prepare_request would merge session settings
    (cookies, auth, hooks) that are always empty here, and at ~0.2 ms it was a seventh of a
    worker's CPU per callback (python -m bench.profile --py-spy); the URL, re-parsed and
    re-quoted for every attempt, is prepared once per distinct URL."""
    prepared = requests.PreparedRequest()
    prepared.method = method.upper()
    prepared.url, url_auth = _prepared_url(url)
    merged = requests.structures.CaseInsensitiveDict(_SESSION_HEADERS)
    merged.update(headers)
    prepared.prepare_headers(merged)  # validates names and values (no header injection)
    prepared.prepare_body(body or None, None)
    if url_auth:
        prepared.prepare_auth(url_auth)  # user:password@ in the URL: Basic auth, as requests does
    prepared.hooks = {"response": []}
    return prepared


# What a Session adds to every request (User-Agent, Accept, Accept-Encoding, Connection).
_SESSION_HEADERS = requests.utils.default_headers()


@functools.lru_cache(maxsize=4096)
def _prepared_url(url: str) -> tuple[str, tuple | None]:
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)
    url_auth = requests.utils.get_auth_from_url(prepared.url)
    return prepared.url, (url_auth if any(url_auth) else None)


def _read_body(
    response: requests.Response, limit: int, watch: _Watch, total_timeout: float
) -> tuple[bytes, bool]:
    """At most `limit` bytes of the body; leaving early closes the connection (never drained)."""
    parts: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(chunk_size=CHUNK_SIZE):
            if time.monotonic() > watch.deadline:
                raise TotalTimeout(total_timeout)
            room = limit - size
            if len(chunk) > room:
                parts.append(chunk[:room])
                return b"".join(parts), True
            parts.append(chunk)
            size += len(chunk)
    except requests.ConnectionError as exc:
        # requests reports a read timeout inside the body as a ConnectionError.
        if exc.args and isinstance(exc.args[0], ReadTimeoutError):
            raise requests.ReadTimeout(exc.args[0]) from exc
        raise
    return b"".join(parts), False
