"""manage.py replay_dead: dead letters sent again, narrowed by tenant and time; dry run; bad arguments."""

import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from callbacks.models import AuditLog, CallbackTask, TaskEvent, TaskStatus
from callbacks.services.tenants import tenant_create
from tests.factories import make_task
from tests.processes import service_env

pytestmark = pytest.mark.django_db


def replay(*args) -> str:
    out = StringIO()
    call_command("replay_dead", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def dead_task(tenant, *, died_ago=timedelta(minutes=5), **fields):
    return make_task(
        tenant=tenant,
        url="https://hooks.example.com/",
        status=TaskStatus.DEAD,
        attempts=4,
        max_retries=3,
        finished_at=timezone.now() - died_ago,
        next_attempt_at=None,
        **fields,
    )


def statuses():
    return dict(CallbackTask.objects.values_list("business_id", "status"))


def test_replays_every_dead_letter_in_batches(tenant):
    for n in range(5):
        dead_task(tenant, business_id=f"d{n}")
    make_task(tenant=tenant, url="https://hooks.example.com/", status=TaskStatus.FAILED, business_id="failed")

    output = replay("--batch-size", "2")

    assert "Replayed 5 dead letter(s)." in output
    assert statuses() == {**{f"d{n}": "scheduled" for n in range(5)}, "failed": "failed"}
    task = CallbackTask.objects.get(business_id="d0")
    assert task.max_retries == 4 and task.finished_at is None and task.next_attempt_at is not None
    assert TaskEvent.objects.filter(note="replayed by manage.py").count() == 5
    assert AuditLog.objects.filter(action="task.replay_dead").count() == 3  # one per batch


def test_tenant_and_since_narrow_it(tenant):
    other = tenant_create(name="globex").tenant
    dead_task(tenant, business_id="recent")
    dead_task(tenant, business_id="old", died_ago=timedelta(days=3))
    dead_task(other, business_id="theirs")

    assert "Replayed 1 dead letter(s)." in replay("--tenant", "acme", "--since", "2d")
    assert statuses() == {"recent": "scheduled", "old": "dead", "theirs": "dead"}


def test_since_takes_an_iso_time(tenant):
    dead_task(tenant, business_id="recent")
    dead_task(tenant, business_id="old", died_ago=timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).isoformat()

    replay("--since", since)

    assert statuses() == {"recent": "scheduled", "old": "dead"}


def test_dry_run_counts_and_changes_nothing(tenant):
    dead_task(tenant, business_id="d")

    assert "Would replay 1 dead letter(s)." in replay("--dry-run")
    assert statuses() == {"d": "dead"}
    assert not AuditLog.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "nobody"], "No tenant named 'nobody'"),
        (["--since", "yesterday"], "ISO 8601"),
        (["--since", "2030-01-01T09:00:00"], "include a UTC offset"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--batch-size", "many"], "invalid int value"),
    ],
)
def test_bad_arguments(db, args, message):
    with pytest.raises(CommandError) as error:
        replay(*args)

    assert message in str(error.value)


def test_exit_code_from_the_command_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "replay_dead", "--since", "soon"],
        cwd=settings.BASE_DIR,
        env=service_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1 and "--since 'soon'" in result.stderr
