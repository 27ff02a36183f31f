"""The README's shell examples run as written after `make run`: its demo tenant (the `export` lines
bootstrap_demo prints), its processes (run_all), its demo receiver, from a terminal of their own."""

import re
import socket
import subprocess
import uuid

import pytest
from django.conf import settings

from callbacks.models import CallbackTask, TaskStatus
from tests.processes import service_env, wait_until

pytestmark = pytest.mark.e2e

README = settings.BASE_DIR / "README.md"
# What `make run` sets for its own processes (Makefile).
MAKE_RUN_ENV = {"CALLBACKS_DEMO_ENDPOINTS": "true", "CALLBACKS_ALLOWED_NETWORKS": "127.0.0.1/32,::1/128"}


def shell_examples(section: str) -> list[str]:
    """The ```sh blocks of a README section, in order."""
    text = README.read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", body, flags=re.S)


def free_port() -> int:
    """A port the kernel has just handed out (run_all's web server needs a number, not port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_first_request_section_runs_as_written(service, tmp_path):
    examples = shell_examples("A first request")
    assert len(examples) >= 3
    var_dir = tmp_path / "var"
    env = service_env(var_dir, **MAKE_RUN_ENV)
    printed = subprocess.run(
        [".venv/bin/python", "manage.py", "bootstrap_demo"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    exports = [line.strip() for line in printed.splitlines() if line.strip().startswith("export ")]
    assert [line.split("=")[0] for line in exports] == ["export TC_KEY", "export TC_SECRET"]
    assert re.search(r"Signing secret:\s+whsec_", printed)

    port = free_port()
    service("run", ["run_all", "--port", str(port)], **MAKE_RUN_ENV)
    wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), timeout=60, message="the web server")

    # Another terminal: the pasted exports, not make run's variables.
    terminal = {key: value for key, value in env.items() if key not in MAKE_RUN_ENV}
    script = "\n".join(
        [
            "set -euo pipefail",
            *exports,
            *(block.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for block in examples),
        ]
    )
    ran = subprocess.run(
        ["bash", "-c", script],
        cwd=settings.BASE_DIR,
        env=terminal,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert '{"error":{' not in ran.stdout  # the API's error shape
    task_id = uuid.UUID(ran.stdout.splitlines()[0])  # echo "$TASK_ID"
    assert f'"id":"{task_id}"' in ran.stdout and '"results":[' in ran.stdout
    assert "delivered 100, failed 0, dead 0" in ran.stderr
    wait_until(
        lambda: CallbackTask.objects.get(pk=task_id).status == TaskStatus.SUCCEEDED,
        timeout=60,
        message="the first callback delivered to the demo receiver",
    )


def _answers(url: str) -> bool:
    try:
        return subprocess.run(["curl", "-sf", url], capture_output=True, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False
