"""manage.py send_callback: one or many callbacks, checked as the API checks them; clear errors."""

import json
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from callbacks.models import AuditLog, CallbackTask
from callbacks.services.tenants import tenant_create
from tests.factories import declare_queues
from tests.processes import service_env

pytestmark = pytest.mark.django_db


def send(*args) -> list[str]:
    out, err = StringIO(), StringIO()
    call_command("send_callback", *args, stdout=out, stderr=err)
    return out.getvalue().split()


def test_one_callback_with_every_option(tenant):
    declare_queues("billing")
    (task_id,) = send(
        "https://hooks.example.com/paid",
        "--tenant",
        "acme",
        "--method",
        "put",
        "--header",
        "X-Order: 17",
        "--header",
        "X-Shop:eu",
        "--body",
        '{"paid": true, "amount": 12.5}',
        "--delay",
        "60",
        "--queue",
        "billing",
        "--priority",
        "8",
        "--business-id",
        "order-17",
    )

    task = CallbackTask.objects.get(pk=task_id)
    assert (task.method, task.queue, task.priority, task.business_id) == ("PUT", "billing", 8, "order-17")
    assert task.headers == {"X-Order": "17", "X-Shop": "eu"}
    assert json.loads(task.payload) == {"paid": True, "amount": 12.5}
    assert timedelta(seconds=55) < task.next_attempt_at - timezone.now() <= timedelta(seconds=60)
    assert AuditLog.objects.get(action="task.create").actor == "manage.py"


def test_xml_body_is_sent_as_given(tenant):
    (task_id,) = send("https://hooks.example.com/", "--body-format", "xml", "--body", "<a>1</a>")

    assert CallbackTask.objects.get(pk=task_id).payload == "<a>1</a>"


def test_count_creates_that_many_in_batches_and_prints_every_id(tenant, monkeypatch):
    monkeypatch.setattr("callbacks.management.commands.send_callback.MAX_BATCH", 4)

    ids = send("https://hooks.example.com/", "--count", "10")

    assert len(ids) == len(set(ids)) == 10
    assert set(CallbackTask.objects.values_list("pk", flat=True)) == {__import__("uuid").UUID(i) for i in ids}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://hooks.example.com/"], "URL:"),
        (["https://hooks.example.com/", "--header", "no-colon"], "NAME:VALUE"),
        (["https://hooks.example.com/", "--header", "Host: evil"], "--header"),
        (["https://hooks.example.com/", "--body", "{not json"], "--body: not JSON"),
        (["https://hooks.example.com/", "--body-format", "xml", "--body", "<a>"], "--body"),
        (["https://hooks.example.com/", "--priority", "12"], "--priority"),
        (["https://hooks.example.com/", "--queue", "Bad Queue"], "--queue"),
        (["https://hooks.example.com/", "--delay", "-1"], "--delay"),
        (["https://hooks.example.com/", "--count", "0"], "--count must be at least 1"),
        (["https://hooks.example.com/", "--tenant", "nobody"], "No tenant named 'nobody'"),
        (["https://hooks.example.com/", "--method", "TRACE"], "invalid choice"),
    ],
)
def test_bad_arguments_are_command_errors_naming_the_option(tenant, args, message):
    with pytest.raises(CommandError, match=None) as error:
        send(*args)

    assert message in str(error.value)
    assert not CallbackTask.objects.exists()


def test_tenant_must_be_named_when_there_are_several(tenant):
    tenant_create(name="globex")

    with pytest.raises(CommandError, match="Give --tenant NAME"):
        send("https://hooks.example.com/")


def test_no_tenant_yet_says_how_to_make_one(db):
    with pytest.raises(CommandError, match="create_tenant"):
        send("https://hooks.example.com/")


def test_exit_codes_from_the_command_line(tmp_path):
    command = [sys.executable, "manage.py", "send_callback"]

    missing = subprocess.run(
        command, cwd=settings.BASE_DIR, env=service_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    bad = subprocess.run(
        [*command, "https://x.example.com/", "--header", "oops"],
        cwd=settings.BASE_DIR,
        env=service_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    helped = subprocess.run(
        [*command, "--help"],
        cwd=settings.BASE_DIR,
        env=service_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert missing.returncode == 2 and "the following arguments are required: url" in missing.stderr
    assert bad.returncode == 1 and "CommandError: --header 'oops'" in bad.stderr
    assert helped.returncode == 0 and "--count" in helped.stdout and "repeatable" in helped.stdout
