"""`make run`'s foreground supervisor: web, dispatcher and workers until Ctrl-C.

Each child runs in a session of its own, so the terminal's Ctrl-C reaches only this process,
which then signals each child's main process once. A signal to the whole django-q2 process
group can deadlock its master (docs/deploy.md), so qcluster's workers are never signalled.
"""

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

GRACE_SECONDS = 35  # qcluster finishes callbacks in flight (total timeout 30 s) before exiting


class Command(BaseCommand):
    help = "Run web server, dispatcher and django-q2 workers in the foreground; Ctrl-C stops them all."

    def add_arguments(self, parser):
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument("--host", default="127.0.0.1")

    def handle(self, *args, port, host, **options):
        manage = [sys.executable, "manage.py"]
        commands = {
            "web": [*manage, "runserver", f"{host}:{port}", "--noreload"],
            "dispatcher": [*manage, "run_dispatcher"],
            "workers": [*manage, "qcluster"],
        }
        children = {
            name: subprocess.Popen(command, start_new_session=True) for name, command in commands.items()
        }
        self.stdout.write(
            f"Running on http://{host}:{port}/ (admin: /admin/, API docs: /api/docs/). Ctrl-C stops."
        )

        stopping = False

        def request_stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        while not stopping:
            exited = [name for name, child in children.items() if child.poll() is not None]
            if exited:
                self.stderr.write(f"{', '.join(exited)} exited; stopping the others")
                break
            time.sleep(0.2)
        self._stop_all(children)

    def _stop_all(self, children):
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for name, child in children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in {GRACE_SECONDS} s; killing it")
                os.killpg(child.pid, signal.SIGKILL)
        self.stdout.write("Stopped.")
