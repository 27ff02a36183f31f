"""Operator commands against the real service: `send_callback --wait` follows the callbacks it registered
through a real dispatcher and qcluster to a real receiver, and sums up what became of them."""

import subprocess
import sys

import pytest
from django.conf import settings

from callbacks.services.tenants import tenant_create, tenant_update_policy
from tests.processes import service_env
from tests.receivers import Receiver, Reply

pytestmark = pytest.mark.e2e

# By order of arrival: delivered, failed (a 400 is not retried), dead (no retries left after a 503).
REPLIES = [Reply(status=200), Reply(status=400), Reply(status=503)]


@pytest.fixture
def running(service):
    service("dispatcher", ["run_dispatcher"])
    service("workers", ["qcluster"])


def send_and_wait(tmp_path, url, *args):
    return subprocess.run(
        [sys.executable, "manage.py", "send_callback", url, "--tenant", "acme", "--wait", *args],
        cwd=settings.BASE_DIR,
        env=service_env(tmp_path / "var"),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_wait_shows_delivery_and_ends_with_a_summary(running, tmp_path):
    tenant_create(name="acme")
    with Receiver() as receiver:
        done = send_and_wait(tmp_path, receiver.url + "/hook", "--count", "12")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.split()) == 12  # the ids, one a line, as without --wait
    assert "final" in done.stderr and "12/12" in done.stderr  # the delivery bar, not only registration
    summary = done.stderr.strip().splitlines()[-1]
    assert summary.startswith("delivered 12, failed 0, dead 0, cancelled 0, unfinished 0 of 12 in ")


def test_wait_counts_failed_and_dead_apart_and_exits_1(running, tmp_path):
    tenant = tenant_create(name="acme").tenant
    tenant_update_policy(tenant=tenant, data={"max_retries": 0}, actor_type="user", actor="test")
    with Receiver(lambda received: REPLIES[(received.seq - 1) % 3]) as receiver:
        done = send_and_wait(tmp_path, receiver.url + "/hook", "--count", "9")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert any(
        line.startswith("delivered 3, failed 3, dead 3, cancelled 0, unfinished 0 of 9 in ") for line in lines
    )
    assert lines[-1] == "CommandError: 6 of 9 callbacks not delivered"


def test_wait_gives_up_when_nothing_delivers(tmp_path, transactional_db):
    tenant_create(name="acme")
    done = send_and_wait(tmp_path, "http://127.0.0.1:9/hook", "--wait-timeout", "1")
    assert done.returncode == 1
    assert "unfinished 1 of 1" in done.stderr
    assert "1 callbacks not final after 1 s (is a worker running?)" in done.stderr
