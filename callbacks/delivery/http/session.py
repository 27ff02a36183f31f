"""The per-process session: one tuned requests.Session and its adapters, made on first use,
rebuilt in a forked child and when the pool settings change at run time.

One adapter per TLS identity (tls.py): the installation's own, mounted on the session, and one
for each tenant with a client certificate or CA of its own, made on its first callback. Adapters
never share pools, so no connection is reused across identities. A tenant that replaces or
removes its certificate has a new identity: its next attempts get a new adapter, attempts in
flight finish on the old one, which is closed once no attempt has used it for a while.

Redirects are never followed (a 3xx is an outcome), proxies from the environment are ignored
(trust_env False: a proxy would hide the target from the SSRF guard).
"""

import os
import threading
import time
from dataclasses import dataclass, field

import requests

from callbacks import conf
from callbacks.delivery.http import tls
from callbacks.delivery.http.connect_retry import ConnectPhaseRetry
from callbacks.delivery.http.deadline import process_watchdog
from callbacks.delivery.http.http2 import Http2Transport
from callbacks.delivery.http.pools import Adapter

# A tenant's adapter nobody used for this long is closed (its identity was replaced or removed,
# or the tenant has gone quiet); the next callback makes it again.
IDENTITY_IDLE_SECONDS = 600.0


@dataclass
class _ProcessState:
    pid: int
    session: requests.Session
    adapter: Adapter
    config: tuple  # the pool settings it was built with
    identities: dict = field(default_factory=dict)  # identity key -> [Adapter, last used]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def adapter_for(self, identity: tls.TlsIdentity | None) -> Adapter:
        """The adapter of `identity` (None: the installation's)."""
        if identity is None:
            return self.adapter
        now = time.monotonic()
        with self.lock:
            entry = self.identities.get(identity.key)
            if entry is None:
                entry = self.identities[identity.key] = [_make_adapter(self.config, identity), now]
            entry[1] = now
            stale = [key for key, (_, used) in self.identities.items() if now - used > IDENTITY_IDLE_SECONDS]
            closing = [self.identities.pop(key)[0] for key in stale]
        for adapter in closing:
            adapter.close()
        return entry[0]

    def adapters(self) -> list[Adapter]:
        with self.lock:
            return [self.adapter, *(entry[0] for entry in self.identities.values())]


_state: _ProcessState | None = None
_state_lock = threading.Lock()


def _forget_after_fork() -> None:
    # A forked worker must not share sockets with its parent: everything is rebuilt on first use.
    global _state, _state_lock
    _state = None
    _state_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def _pool_config() -> tuple:
    return (
        conf.get("POOL_HOSTS"),
        conf.get("POOL_MAXSIZE_PER_HOST"),
        conf.get("CONNECT_RETRIES"),
        conf.get("HTTP2"),
        conf.get("CA_BUNDLE"),
    )


def process() -> _ProcessState:
    global _state
    state = _state
    config = _pool_config()
    if state is not None and state.pid == os.getpid() and state.config == config:
        return state
    with _state_lock:
        if _state is None or _state.pid != os.getpid():
            _state = _build_state(config)
        elif _state.config != config:
            # Pool sizes changed at run time: a new adapter for new requests; requests in
            # flight keep the old one, whose connections close as they are dropped.
            _state = _build_state(config)
        return _state


def _make_adapter(config: tuple, identity: tls.TlsIdentity | None) -> Adapter:
    pool_hosts, pool_maxsize, connect_retries, http2, _ca_bundle = config
    # The HTTP/1.1 pools and the HTTP/2 transport each have their own context: urllib3 sets the
    # ALPN of a context it wraps with to http/1.1 alone.
    return Adapter(
        pool_connections=pool_hosts,
        pool_maxsize=pool_maxsize,
        pool_block=False,
        max_retries=ConnectPhaseRetry.for_connect_phase(connect_retries),
        ssl_context=tls.make_context(identity, alpn=["http/1.1"]),
        http2=Http2Transport(tls.make_context(identity, alpn=["h2", "http/1.1"])) if http2 else None,
    )


def _build_state(config: tuple) -> _ProcessState:
    adapter = _make_adapter(config, None)
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return _ProcessState(pid=os.getpid(), session=session, adapter=adapter, config=config)


def abort_in_flight() -> int:
    """End every attempt of this process now, as if its deadline had come (shutdown)."""
    state = _state
    if state is None or state.pid != os.getpid():
        return 0
    return process_watchdog().expire_all()


def get_session() -> requests.Session:
    """This process's tuned session (for callers that need it directly, e.g. the benchmark)."""
    return process().session


def pool_state() -> dict:
    """Connections of this process: HTTP/1.1 ones in use and idle in the pools, how many host
    pools, and the HTTP/2 connections (in use: carrying a stream) and their streams in flight."""
    host_pools, http2 = [], {"connections": 0, "active": 0, "idle": 0, "streams": 0}
    for adapter in process().adapters():
        pools = adapter.poolmanager.pools
        with pools.lock:
            host_pools.extend(pools._container.values())
        if adapter.http2 is not None:
            for key, value in adapter.http2.state().items():
                http2[key] += value
    return {
        "active": sum(pool.active for pool in host_pools),
        "idle": sum(pool.idle() for pool in host_pools),
        "pools": len(host_pools),
        "http2": http2,
    }
