"""The per-process session: one tuned requests.Session and its adapter, made on first use,
rebuilt in a forked child and when the pool settings change at run time.

Redirects are never followed (a 3xx is an outcome), proxies from the environment are ignored
(trust_env False: a proxy would hide the target from the SSRF guard).
"""

import os
import threading
from dataclasses import dataclass

import requests

from callbacks import conf
from callbacks.delivery.http.connect_retry import ConnectPhaseRetry
from callbacks.delivery.http.deadline import process_watchdog
from callbacks.delivery.http.pools import Adapter


@dataclass
class _ProcessState:
    pid: int
    session: requests.Session
    adapter: Adapter
    config: tuple  # the pool settings it was built with


_state: _ProcessState | None = None
_state_lock = threading.Lock()


def _forget_after_fork() -> None:
    # A forked worker must not share sockets with its parent: everything is rebuilt on first use.
    global _state, _state_lock
    _state = None
    _state_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def _pool_config() -> tuple:
    return (conf.get("POOL_HOSTS"), conf.get("POOL_MAXSIZE_PER_HOST"), conf.get("CONNECT_RETRIES"))


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


def _build_state(config: tuple) -> _ProcessState:
    pool_hosts, pool_maxsize, connect_retries = config
    adapter = Adapter(
        pool_connections=pool_hosts,
        pool_maxsize=pool_maxsize,
        pool_block=False,
        max_retries=ConnectPhaseRetry.for_connect_phase(connect_retries),
    )
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
    """Connections of this process: in use, idle in the pools, and how many host pools."""
    pools = process().adapter.poolmanager.pools
    with pools.lock:
        host_pools = list(pools._container.values())
    return {
        "active": sum(pool.active for pool in host_pools),
        "idle": sum(pool.idle() for pool in host_pools),
        "pools": len(host_pools),
    }
