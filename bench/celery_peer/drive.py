"""Drives one measurement of the Celery peer against a worker already started (run.py), in a
process of the peer's own Django project. Prints the figures as JSON on stdout.

As the service's throughput is measured (warm processes, the backlog already stored, the clock
started when the workers may take it), the worker starts consuming only a warm-up queue; the
callbacks are enqueued on a queue it does not consume yet, and the clock starts when it is told
to consume that one too (Celery's `add_consumer` remote control).
"""

import argparse
import json
import time
import uuid

import django

django.setup()

from django.db import connection  # noqa: E402  (needs django.setup())
from django.db.models import Max  # noqa: E402

from bench.celery_peer.app import app  # noqa: E402
from bench.celery_peer.models import Attempt  # noqa: E402
from bench.celery_peer.tasks import deliver  # noqa: E402
from bench.polling import wait_for_count  # noqa: E402

PAYLOAD = {"hello": "world"}
WARM_UP = 200


def create_table() -> None:
    """The peer's one table, made without migrations (it lives only in the benchmark's database)."""
    if Attempt._meta.db_table not in connection.introspection.table_names():
        with connection.schema_editor() as editor:
            editor.create_model(Attempt)
    Attempt.objects.all().delete()


def wait_for_worker(worker: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.control.ping(destination=[worker], timeout=1.0):
            return
    raise SystemExit(f"the Celery worker {worker} did not answer within {timeout:.0f} s")


def enqueue(url: str, count: int, queue: str) -> None:
    with app.producer_or_acquire() as producer:
        for _ in range(count):
            deliver.apply_async(args=[str(uuid.uuid4()), url, PAYLOAD], queue=queue, producer=producer)


def wait_succeeded(count: int, timeout: float) -> bool:
    succeeded = Attempt.objects.filter(status_code__gte=200, status_code__lt=300)
    return wait_for_count(succeeded.count, count, timeout)


def drop_queue(queue: str) -> None:
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(queue)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--worker", required=True, help="the worker's node name (-n)")
    parser.add_argument("--warm-queue", required=True, help="the queue the worker consumes from its start")
    parser.add_argument("--queue", required=True, help="the measured queue, consumed once filled")
    args = parser.parse_args()

    create_table()
    wait_for_worker(args.worker, 60)
    enqueue(args.url, WARM_UP, args.warm_queue)
    if not wait_succeeded(WARM_UP, 120):
        raise SystemExit("the Celery peer's warm-up did not finish")
    Attempt.objects.all().delete()

    enqueue_started = time.monotonic()
    enqueue(args.url, args.count, args.queue)
    enqueue_seconds = time.monotonic() - enqueue_started
    started = time.time()
    app.control.add_consumer(args.queue, destination=[args.worker], reply=True, timeout=10)
    finished = wait_succeeded(args.count, 900)
    last = Attempt.objects.aggregate(last=Max("finished_at"))["last"]
    attempts = Attempt.objects.count()
    succeeded = Attempt.objects.filter(status_code__gte=200, status_code__lt=300).count()
    drop_queue(args.queue)
    drop_queue(args.warm_queue)
    print(
        json.dumps(
            {
                "rate": succeeded / (last.timestamp() - started),
                "enqueue_seconds": enqueue_seconds,
                "attempts": attempts,
                "succeeded": succeeded,
                "finished": finished,
            }
        )
    )


if __name__ == "__main__":
    main()
