"""The worker processes' reader of django-q2's task queue (callbacks/delivery/crashsafe_queue.py)."""

import multiprocessing
import os
import threading
from contextlib import ExitStack

import pytest

from callbacks.delivery import worker as worker_module
from callbacks.delivery.claim import leases
from callbacks.delivery.crashsafe_queue import NonBlockingReader
from tests.factories import make_tasks
from tests.receivers import Receiver, Reply


@pytest.fixture
def task_queue():
    task_queue = multiprocessing.get_context("fork").Queue()
    yield task_queue
    task_queue.close()


def test_a_reader_that_pauses_leaves_an_arrived_batch_to_one_that_does_not(task_queue):
    task_queue.put("first")
    got = {}

    def read(name, reader):
        got[name] = reader.get()

    busy = threading.Thread(target=read, args=("busy", NonBlockingReader(task_queue, pause=lambda: 2.0)))
    busy.start()  # it sees the batch first, and waits before it tries
    idle = threading.Thread(target=read, args=("idle", NonBlockingReader(task_queue)))
    idle.start()
    idle.join(timeout=10)
    task_queue.put("second")
    busy.join(timeout=10)

    assert got == {"idle": "first", "busy": "second"}


@pytest.mark.django_db(transaction=True)
def test_a_worker_process_pauses_for_each_lane_it_holds_up_to_a_bound(
    tenant, callbacks_settings, monkeypatch
):
    worker = worker_module.DeliveryWorker(concurrency=8, flush_seconds=0.01, name="test-worker")
    monkeypatch.setattr(worker_module, "_worker", worker)
    monkeypatch.setattr(worker_module, "_worker_pid", os.getpid())
    pauses = [worker_module.lane_pause()]
    with ExitStack() as receivers:
        try:
            for _ in range(6):
                # A receiver that does not answer keeps its lane in the worker.
                receiver = receivers.enter_context(Receiver(Reply(hang=True)))
                make_tasks(1, tenant=tenant, url=receiver.url)
                (claim,) = leases.claim_due(limit=10)
                worker.deliver_lane(claim.token, claim.task_ids, claim.rate, claim.tenant_id, claim.origin)
                pauses.append(worker_module.lane_pause())
        finally:
            worker.shutdown(timeout=0.1)  # what hangs is recorded as interrupted

    assert pauses == pytest.approx([0.0, 0.002, 0.004, 0.006, 0.008, 0.01, 0.01])
