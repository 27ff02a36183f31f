"""A stand-in worker process for the metrics tests: records attempts the way the worker's recorder does.

Usage: python -m tests.monitoring.recorder_process TASK_ID COUNT SEED IN_FLIGHT
Writes the attempts, calls callbacks.delivery.instruments.accounting.attempts_recorded, raises the in-flight gauge,
prints "recorded", and exits when its standard input closes, without any clean-up (like a
killed or recycled worker).
"""

import os
import sys

import django


def main(task_id: str, count: int, seed: int, in_flight: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskcenter.settings")
    django.setup()
    from callbacks.delivery.instruments import metrics
    from callbacks.delivery.instruments.accounting import attempts_recorded
    from callbacks.models import CallbackTask, TaskExecution
    from tests.factories import make_attempts

    task = CallbackTask.objects.get(pk=task_id)
    attempts = TaskExecution.objects.bulk_create(make_attempts(task=task, count=count, seed=seed))
    attempts_recorded(attempts, {task.id: task})
    metrics.CALLBACKS_IN_FLIGHT.labels(metrics.queue_label(task.queue)).inc(in_flight)
    print("recorded", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
