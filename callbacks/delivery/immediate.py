"""One attempt made at once, in the calling process: an operator's test callback is sent within the
request that created it, and its answer shown there.

The task is claimed as a lane of one slot in the transaction that creates it, so no dispatcher ever
sees it unclaimed, then started, sent and recorded by the steps a worker takes
(leases.start_claimed, executor.send_attempt, outcomes.record): the attempt is signed, guarded,
classified, retried, moves its origin's breaker and is accounted like any other.
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as StillSending
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from callbacks import conf
from callbacks.delivery import executor, outcomes, results
from callbacks.delivery.claim import lanes, leases
from callbacks.models import CallbackTask, TaskExecution

logger = logging.getLogger(__name__)


@dataclass
class Sent:
    """The task made, and its attempt's record; execution is None when the task was not claimable
    at once (its queue paused, its tenant deactivated): the engine then sends it in its turn."""

    task: CallbackTask
    execution: TaskExecution | None


def create_and_send(create, *, worker: str) -> Sent:
    """`create()` makes a task due now (a service call) and returns it; it runs in the transaction
    that claims the task. Then one attempt is sent and recorded here; the retry policy decides what
    follows, as it does after a worker's attempt."""
    with transaction.atomic():
        task = create()
        token = leases.claim_task(task_id=task.pk)
    if token is None:
        return Sent(task=task, execution=None)
    try:
        started = leases.start_claimed(token=token, task_ids=[task.pk])
        if not started:  # cancelled in the moment since the claim
            return Sent(task=task, execution=None)
        outcomes.record(
            [outcomes.Finished(task=started[0], token=token, result=_send(started[0], token), worker=worker)]
        )
    finally:
        lanes.end(token)
    # As recorded: the task in the state the retry policy decided, the attempt's row as stored.
    task = CallbackTask.objects.select_related("tenant").get(pk=task.pk)
    return Sent(task=task, execution=task.executions.filter(attempt=started[0].attempts).first())


def _send(task: CallbackTask, token: str) -> results.AttemptResult:
    """The attempt, sent from a thread of its own while this one keeps the task's and the lane's
    leases alive (a worker's recorder does the same), so that a slow receiver is not taken for a
    vanished worker."""
    every = min(conf.get("RUNNING_LEASE_SECONDS") / 4, conf.get("LANE_LEASE_SECONDS") / 3)
    with ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="callback-sender", initializer=conf.forbid_database_in_this_thread
    ) as pool:
        sending = pool.submit(executor.send_attempt, task, attempt=task.attempts)
        while True:
            try:
                return sending.result(timeout=every)
            except StillSending:
                leases.renew_running([(task.id, token)])
                lanes.renew([token], now=timezone.now())
            except Exception as exc:
                # As the worker does: an attempt that raised is recorded now rather than left to its lease.
                logger.exception("sending task %s raised", task.id)
                return results.internal_error_result(task, error=f"internal error: {type(exc).__name__}")
