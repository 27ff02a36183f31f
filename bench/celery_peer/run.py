"""The Celery peer's measurement, from the benchmark's side: a sink, a Celery worker (prefork)
and the driver (drive.py), each in a process of its own, on this run's database."""

import json
import os
import subprocess
import sys

from bench.harness import ROOT, Harness

PEER_ENV = {"DJANGO_SETTINGS_MODULE": "bench.celery_peer.settings"}


def celery_peer_run(h: Harness, *, count: int, concurrency: int) -> dict:
    """`count` callbacks through the Celery peer to one fresh sink; returns drive.py's figures."""
    sink = h.start_sink()
    tag = f"{os.getpid()}-{len(h.processes)}"
    worker, warm_queue, queue = f"peer-{tag}@bench", f"peer-warm-{tag}", f"peer-{tag}"
    h.start(
        "celery-peer",
        "-m",
        "celery",
        "-A",
        "bench.celery_peer.app",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "--queues",
        warm_queue,
        "--hostname",
        worker,
        "--loglevel",
        "WARNING",
        **PEER_ENV,
    )
    try:
        driven = subprocess.run(
            [sys.executable, "-m", "bench.celery_peer.drive", "--url", sink.url, "--count", str(count)]
            + ["--worker", worker, "--warm-queue", warm_queue, "--queue", queue],
            cwd=ROOT,
            env=h.env(**PEER_ENV),
            capture_output=True,
            text=True,
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"the Celery peer failed: {exc.stderr}; see the logs in {h.var_dir}") from None
    finally:
        h.stop_all()
    return json.loads(driven.stdout)
