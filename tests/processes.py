"""Real service processes for end-to-end tests: run_dispatcher and qcluster, as operators run them."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from bench.harness import running, thread_count, tree  # noqa: F401  (running, thread_count: for the tests)
from callbacks.sealing import derived_key

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the database the tests are using right now (pytest-django's test database)."""
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
        return (
            f"postgres://{settings['USER']}{password}@{settings['HOST'] or '127.0.0.1'}:"
            f"{settings['PORT'] or 5432}/{settings['NAME']}"
        )
    return f"sqlite:///{settings['NAME']}"


def service_env(var_dir: Path, **overrides) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "taskcenter.settings",
            "DATABASE_URL": database_url(),
            "CALLBACKS_VAR_DIR": str(var_dir),
            "CALLBACKS_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
            "CALLBACKS_DISPATCH_POLL_SECONDS": "0.1",
            "PYTHONUNBUFFERED": "1",
            # The keys this process seals tenants' private keys with: the service's processes must open
            # them (theirs would be derived from a SECRET_KEY of their own, under var_dir).
            "CALLBACKS_ENCRYPTION_KEYS": ",".join(
                settings.CALLBACKS_ENCRYPTION_KEYS or [derived_key(settings.SECRET_KEY).decode()]
            ),
        }
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # each test's processes get their own, under var_dir
    env.update({key: str(value) for key, value in overrides.items()})
    return env


class ServiceProcess:
    """One `manage.py` process in a session of its own, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 45) -> int:
        """SIGTERM to the main process only (never the group); SIGKILL the group if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                raise AssertionError(
                    f"{self.name} did not stop within {timeout} s:\n{self.log()[-3000:]}"
                ) from None
        self._log.close()
        return self.proc.returncode

    def kill_group(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()


def descendants(pid: int) -> list[int]:
    return tree(pid)[1:]


# The start of a probe process as manage.py starts: the installation prepared, then Django set up.
START_AS_MANAGE_PY = (
    "import json, sys, django\nfrom taskcenter.bootstrap import prepare\nprepare()\ndjango.setup()\n"
)


def modules_loaded(var_dir: Path, code: str, names) -> list:
    """Which of `names` a fresh process has imported after starting as manage.py does and running
    `code`, in the service's environment (its installation directory `var_dir`)."""
    probe = (
        START_AS_MANAGE_PY
        + code
        + f"\nprint(json.dumps([name for name in {tuple(names)!r} if name in sys.modules]))\n"
    )
    finished = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=service_env(var_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])


def wait_until(predicate, *, timeout: float, interval: float = 0.1, message: str = "condition"):
    """Poll `predicate` until it returns a truthy value; fail with `message` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)
