"""The Celery peer's Django settings: one app, the benchmark's database, Celery's settings under
the CELERY_ namespace as Celery's "First steps with Django" sets them up."""

import os

import dj_database_url

SECRET_KEY = "celery-peer-benchmark-only"
INSTALLED_APPS = ["bench.celery_peer"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Persistent connections: each prefork child keeps its connection across tasks. CONN_MAX_AGE alone
# does not do it: Celery's Django fixup closes every connection before and after each task unless
# CELERY_DB_REUSE_MAX is set (then it closes them every that many tasks); with it unset, the peer
# opened a PostgreSQL connection per callback.
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=600)}
CELERY_DB_REUSE_MAX = 1000

# A Redis database of its own (the drill uses 12, the scale-out test 13, the throttling test 15);
# each run also uses queues of its own, so runs sharing it do not meet.
CELERY_BROKER_URL = os.environ.get("CELERY_PEER_BROKER_URL", "redis://127.0.0.1:6379/10")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Tuning, from Celery's "Optimizing" guide and its task settings:
# - a callback must survive a worker killed mid-attempt: acknowledge after the task ran, and give
#   the message back when the child process running it dies ("Reserve one task at a time",
#   task_reject_on_worker_lost). Retries are countdowns, far below the Redis transport's
#   visibility timeout (1 hour), so no delayed retry is delivered twice for waiting.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# - many short tasks: "this number should be large ... Say 64, or 128" (Prefetch Limits). With
#   late acknowledgment the prefetched messages stay unacknowledged, so they are redelivered too.
CELERY_WORKER_PREFETCH_MULTIPLIER = int(os.environ.get("CELERY_PEER_PREFETCH_MULTIPLIER", 64))
# - no result backend: nothing reads a callback's return value, the attempt row is the record.
CELERY_TASK_IGNORE_RESULT = True
# - the prefork pool (Celery's default) with as many processes as the command line says: cores
#   or a few more, since a task mostly waits on the receiver (bench/celery_peer/run.py).
CELERY_WORKER_POOL = "prefork"
