"""Private parts of pinned libraries that our code relies on: each test fails loudly, naming the
module that needs it, when an upgrade moves or renames one (instead of a cluster that stalls or a
pool state that reads zero in production).

Most are on the delivery hot path; the last ones are tools (schema, progress bars).
"""

import inspect
import multiprocessing
import queue
import threading

import django_q.cluster
import django_q.worker
import requests
from django.core.management.base import OutputWrapper
from django_q.cluster import Cluster, Sentinel
from django_q.signals import post_spawn
from drf_spectacular.openapi import AutoSchema
from prometheus_client import values
from requests.adapters import HTTPAdapter
from urllib3._collections import RecentlyUsedContainer
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.util.retry import Retry

from callbacks.models import CallbackTask


def _parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


# --- multiprocessing (callbacks/delivery/crashsafe_queue.py) -----------------------------------
def test_multiprocessing_queue_has_a_reader_pipe_to_poll():
    """crashsafe_queue.NonBlockingReader waits on Queue._reader.poll() outside the queue's lock."""
    task_queue = multiprocessing.get_context("fork").Queue()
    try:
        assert hasattr(task_queue, "_reader"), "callbacks/delivery/crashsafe_queue.py needs Queue._reader"
        assert task_queue._reader.poll(0) is False
        task_queue.put("x")
        assert task_queue._reader.poll(5) is True
        assert task_queue.get_nowait() == "x"
    finally:
        task_queue.close()


# --- django-q2 (crashsafe_queue.install, management/commands/qcluster.py) ------------------------
def test_django_q2_sentinel_spawns_workers_through_the_module_global_we_replace():
    """crashsafe_queue.install replaces django_q.cluster.worker, which Sentinel.spawn_worker calls,
    and wraps django_q.worker.worker, whose first argument is the task queue."""
    assert callable(getattr(django_q.cluster, "worker", None)), (
        "callbacks/delivery/crashsafe_queue.py replaces django_q.cluster.worker"
    )
    assert "worker" in Sentinel.spawn_worker.__code__.co_names, (
        "callbacks/delivery/crashsafe_queue.py: Sentinel.spawn_worker no longer uses the module's worker"
    )
    assert _parameters(django_q.worker.worker)[0] == "task_queue", (
        "callbacks/delivery/crashsafe_queue.py: django_q.worker.worker's first argument changed"
    )


def test_django_q2_cluster_signal_handler_and_spawn_signal():
    """qcluster's SIGTERM handler calls Cluster.sig_handler after its own graceful stop; its
    post_spawn receiver takes proc_name."""
    assert _parameters(Cluster.sig_handler) == ["self", "signum", "frame"], (
        "callbacks/management/commands/qcluster.py calls Cluster.sig_handler(signum, frame)"
    )
    code = django_q.worker.worker.__code__
    assert "post_spawn" in code.co_names and "proc_name" in code.co_varnames, (
        "callbacks/management/commands/qcluster.py starts each worker's delivery side on post_spawn(proc_name)"
    )
    assert post_spawn is django_q.worker.post_spawn


# --- urllib3 and requests (callbacks/delivery/http/) ---------------------------------------------
def test_urllib3_pools_hand_out_connections_through_get_conn_and_put_conn():
    """http/pools.py counts connections in use and retires stale ones by overriding these, and
    reads the idle ones from the pool's queue."""
    assert _parameters(HTTPConnectionPool._get_conn) == ["self", "timeout"], (
        "callbacks/delivery/http/pools.py overrides HTTPConnectionPool._get_conn(timeout)"
    )
    assert _parameters(HTTPConnectionPool._put_conn) == ["self", "conn"], (
        "callbacks/delivery/http/pools.py overrides HTTPConnectionPool._put_conn(conn)"
    )
    pool = HTTPConnectionPool("127.0.0.1", 9, maxsize=2)
    try:
        assert isinstance(pool.pool, queue.Queue), "callbacks/delivery/http/pools.py reads pool.pool"
        with pool.pool.mutex:
            assert len(pool.pool.queue) == 2, "callbacks/delivery/http/pools.py counts pool.pool.queue"
        conn = pool._get_conn()
        assert hasattr(conn, "sock"), "callbacks/delivery/http/pools.py reads a connection's sock"
        pool._put_conn(conn)
    finally:
        pool.close()


def test_urllib3_pool_manager_keeps_its_pools_in_a_locked_container():
    """http/session.py pool_state() lists the host pools from PoolManager.pools."""
    container = RecentlyUsedContainer(2)
    assert hasattr(container, "_container") and hasattr(container, "lock"), (
        "callbacks/delivery/http/session.py reads PoolManager.pools._container under .lock"
    )
    adapter = HTTPAdapter()
    assert isinstance(adapter.poolmanager.pools, RecentlyUsedContainer)
    assert hasattr(adapter.poolmanager, "pool_classes_by_scheme"), (
        "callbacks/delivery/http/pools.py sets PoolManager.pool_classes_by_scheme"
    )
    assert _parameters(HTTPAdapter.init_poolmanager)[:4] == ["self", "connections", "maxsize", "block"]


def test_urllib3_retry_hooks_the_connect_phase_retry_overrides():
    """http/connect_retry.py overrides increment and asks _is_connection_error."""
    assert _parameters(Retry.increment) == [
        "self",
        "method",
        "url",
        "response",
        "error",
        "_pool",
        "_stacktrace",
    ], "callbacks/delivery/http/connect_retry.py overrides Retry.increment"
    assert callable(getattr(Retry, "_is_connection_error", None)), (
        "callbacks/delivery/http/connect_retry.py calls Retry._is_connection_error"
    )
    assert Retry(total=1).history == ()


def test_requests_prepares_requests_the_way_attempt_rebuilds_it():
    """http/attempt.py prepares requests itself with these PreparedRequest steps."""
    for name in ("prepare_url", "prepare_headers", "prepare_body", "prepare_auth"):
        assert callable(getattr(requests.PreparedRequest, name, None)), (
            f"callbacks/delivery/http/attempt.py calls PreparedRequest.{name}"
        )
    assert callable(requests.utils.get_auth_from_url) and callable(requests.utils.default_headers)


# --- the standard library and Django (callbacks/delivery/worker.py, breaker/recording.py) --------
def test_threading_runs_exit_hooks_before_joining_threads():
    """worker.get_worker registers DeliveryWorker.shutdown with threading._register_atexit, as
    concurrent.futures does, so callbacks in flight are recorded before the process exits."""
    assert callable(getattr(threading, "_register_atexit", None)), (
        "callbacks/delivery/worker.py needs threading._register_atexit"
    )


def test_django_foreign_key_descriptor_says_whether_it_is_cached():
    """breaker/recording.py reads tenants from tasks only when they are loaded."""
    assert callable(getattr(CallbackTask.tenant, "is_cached", None)), (
        "callbacks/delivery/breaker/recording.py calls CallbackTask.tenant.is_cached(task)"
    )


def test_prometheus_client_says_whether_multiprocess_mode_is_on():
    """instruments/multiproc.py tells multiprocess mode from the value class in use."""
    assert hasattr(values, "ValueClass") and hasattr(values, "MutexValue"), (
        "callbacks/delivery/instruments/multiproc.py reads prometheus_client.values.ValueClass"
    )


# --- tools, off the hot path ----------------------------------------------------------------------
def test_django_output_wrapper_exposes_its_stream():
    """replay_dead and send_callback draw their progress bars on the command's stderr stream."""
    assert hasattr(OutputWrapper(None), "_out"), (
        "callbacks/management/commands/replay_dead.py and send_callback.py use OutputWrapper._out"
    )


def test_drf_spectacular_maps_serializers():
    """callbacks/api/schema.py builds schemas with AutoSchema._map_basic_serializer."""
    assert callable(getattr(AutoSchema, "_map_basic_serializer", None)), (
        "callbacks/api/schema.py calls AutoSchema._map_basic_serializer"
    )
