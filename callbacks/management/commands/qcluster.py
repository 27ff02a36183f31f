"""django-q2's qcluster, made to stop gracefully: on SIGTERM its workers start nothing new,
give back what they had not started and finish what is in flight (callbacks.delivery.shutdown).

Signal the main process only; a signal to the whole process group can deadlock django-q2.

With --dispatcher the cluster's main process also runs a dispatcher (leading or standing by,
like any `run_dispatcher`), in a thread started after every fork: one process less per
machine, and its memory is mostly the pages it already shares with its workers.

Its sentinel dies with it, and the sentinel's children with the sentinel (callbacks.delivery.orphans):
a main process killed with SIGKILL leaves no cluster delivering behind a supervisor's restart.

Each worker process starts its delivery side as soon as it is spawned, not at its first batch,
so an idle worker reports itself alive (heartbeats) and its pool state from the start.
"""

import gc
import importlib
import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import CommandError
from django_q.cluster import Cluster
from django_q.conf import Conf
from django_q.management.commands.qcluster import Command as DjangoQCommand
from django_q.signals import post_spawn

# The whole delivery engine (requests, urllib3, our modules) is imported with this command,
# before the cluster forks, rather than by each worker on its first batch (see gc.freeze below).
from callbacks.checks import NON_WEB_CHECKS
from callbacks.delivery import crashsafe_queue, orphans, shutdown
from callbacks.delivery.dispatcher import Dispatcher, Stop
from callbacks.delivery.worker import get_worker, lane_pause

logger = logging.getLogger(__name__)


class Command(DjangoQCommand):
    requires_system_checks = NON_WEB_CHECKS
    help = (
        "Start a django-q2 worker cluster that delivers callbacks. SIGTERM (to this process only) stops it "
        "gracefully: callbacks in flight finish, work not started goes back to the queue."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--dispatcher",
            action="store_true",
            help="also run a dispatcher in this process (one dispatcher leads across all machines; "
            "the others stand by)",
        )

    def handle(self, *args, **options):
        settings.SECRET_KEY  # noqa: B018 - the cluster signs its broker payloads with it
        name = options.get("cluster_name")
        if name and name != Conf.CLUSTER_NAME:
            # django-q2 reads the cluster's name (its queue) when it is imported, before any
            # option is parsed: setting it here would silently serve the default queue.
            raise CommandError(
                f"--name is read too late to take effect; start the cluster as Q_CLUSTER_NAME={name} manage.py qcluster"
            )
        shutdown.prepare()
        # A worker process holding lanes leaves the next one to a process holding fewer.
        crashsafe_queue.install(pause=lane_pause)
        orphans.install()  # after crashsafe_queue: it wraps the worker that one installs
        cluster = Cluster()  # installs its own SIGTERM/SIGINT handlers; ours run first

        dispatcher_stop = Stop()

        def stop_gracefully(signum, frame):
            dispatcher_stop.set()  # claim nothing more, before the workers start giving work back
            shutdown.begin()
            cluster.sig_handler(signum, frame)

        signal.signal(signal.SIGTERM, stop_gracefully)
        signal.signal(signal.SIGINT, stop_gracefully)
        post_spawn.connect(_start_delivery_worker, dispatch_uid="callbacks-start-delivery-worker")
        # Every process of the cluster is forked from this one. Moving what is loaded now out of
        # the garbage collector's reach keeps it from writing to those objects' pages in the
        # children, so the pages stay shared (memory of the whole cluster).
        _load_what_workers_send_with()
        gc.collect()
        gc.freeze()
        cluster.start()
        if options.get("dispatcher") and not dispatcher_stop.is_set():
            # Started after cluster.start(): the sentinel, which forks every worker, was forked
            # before this thread existed, so no child ever inherits it. Not a daemon: the
            # interpreter waits for it (it stops on dispatcher_stop) as it waits for the sentinel.
            threading.Thread(target=_run_dispatcher, args=(dispatcher_stop,), name="dispatcher").start()
        if options.get("run_once", False):
            dispatcher_stop.set()
            cluster.stop()


def _load_what_workers_send_with() -> None:
    """cryptography, which the modules import only where they use it (the dispatcher never does): every
    worker opens sealed secrets, signs and may present a client certificate. Loaded once before the
    fork, its bindings' memory is shared by the workers instead of made anew in each."""
    for name in (
        "cryptography.fernet",
        "cryptography.hazmat.primitives.asymmetric.ed25519",
        "cryptography.x509",
    ):
        importlib.import_module(name)


def _start_delivery_worker(sender, proc_name, **kwargs):
    """django-q2's post_spawn, in each new worker process: its DeliveryWorker starts now."""
    get_worker()


def _run_dispatcher(stop: Stop) -> None:
    # A crashed thread would leave the machine without its dispatcher and nobody would notice
    # (a separate run_dispatcher process would exit and its supervisor would restart it).
    while not stop.is_set():
        try:
            Dispatcher().run(stop)
        except Exception:
            logger.exception("the embedded dispatcher failed; starting it again in 1 s")
            stop.wait(1.0)
