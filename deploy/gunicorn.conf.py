"""Gunicorn's configuration for the web process: `gunicorn -c deploy/gunicorn.conf.py`, as the systemd unit
(deploy/systemd/taskcenter-web.service) and the Procfile run it.

Async workers. A sync worker is held by one connection from its first byte to its last, so four clients
trickling their requests a byte at a time took `gunicorn -w 4` down, /healthz included. Gunicorn's asyncio
worker serves taskcenter.asgi instead: a connection waiting on a slow client costs a coroutine, not a
worker, and Django runs each request's (sync) views and middleware in a thread of its own.
tests/deploy/test_gunicorn.py holds /healthz answering under hundreds of trickling connections.

The reverse proxy in front (docs/install.md) buffers requests as well; this holds without it.
Anything here can be overridden on the command line or in GUNICORN_CMD_ARGS (e.g. "--workers 8").
"""

import os

wsgi_app = "taskcenter.asgi:application"
worker_class = "asgi"
# Processes; gunicorn's own WEB_CONCURRENCY wins when set. Four as docs/deploy.md sized the web side.
workers = int(os.environ.get("WEB_CONCURRENCY") or 4)
# Connections one process keeps open at once, slow ones included: past this, new ones wait in the backlog.
worker_connections = 1000
backlog = 2048
bind = ["127.0.0.1:8000"]  # the proxy's upstream; never exposed directly
# A worker silent this long (a request stuck in a view) is killed and replaced.
timeout = 30
# SIGTERM: requests in flight get this long to finish (systemd's TimeoutStopSec is 35).
graceful_timeout = 25
# Idle keep-alive connections (the proxy's upstream pool) are closed after this.
keepalive = 5
# Request line and headers: gunicorn's limits (4094 bytes, 100 fields, 8190 bytes each).
# X-Forwarded-* are trusted from the proxy on this machine only.
forwarded_allow_ips = "127.0.0.1,::1"
accesslog = "-"
errorlog = "-"
# No control socket in the service user's home ($HOME/.gunicorn): systemd supervises the process.
control_socket_disable = True

# Under ASGI each request's sync code runs in a new thread, so a persistent database connection would
# never be reused and would stay open until PostgreSQL drops it: one connection per request instead, as
# Django advises for ASGI (the dispatcher and the workers keep theirs). Set DB_CONN_MAX_AGE to override.
os.environ.setdefault("DB_CONN_MAX_AGE", "0")


def child_exit(server, worker):
    """A web worker's live gauges must stop counting when it exits (prometheus_client multiprocess)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, directory)
