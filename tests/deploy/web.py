"""A real gunicorn with the shipped configuration (deploy/gunicorn.conf.py), on an ephemeral port of 127.0.0.1.

The test binds the socket (port 0) and hands it to gunicorn (fd://), so the port is known before it starts.
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.processes import wait_until

ROOT = Path(__file__).resolve().parents[2]


class Gunicorn:
    def __init__(self, env: dict, log_path: Path):
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=2048)
        self.port = self.listener.getsockname()[1]
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "--config",
                str(ROOT / "deploy" / "gunicorn.conf.py"),
                "--bind",
                f"fd://{self.listener.fileno()}",
            ],
            cwd=ROOT,
            env=env,
            pass_fds=[self.listener.fileno()],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def get(self, path: str, headers: dict | None = None, timeout: float = 10) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def wait_ready(self, timeout: float = 90) -> None:
        def answers():
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                return self.get("/healthz")[0] == 200
            except OSError:
                return False

        wait_until(answers, timeout=timeout, interval=0.2, message="gunicorn to answer /healthz")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        self.listener.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
