"""The other operator commands: helpful --help, and a CommandError naming the problem for bad arguments."""

import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from tests.processes import service_env

pytestmark = pytest.mark.django_db


def run(*args):
    call_command(*args, stdout=StringIO(), stderr=StringIO())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create_tenant", "acme"], "name: Tenant with this Name already exists."),
        (["create_tenant", ""], "cannot create tenant '': name: This field cannot be blank."),
        (["create_tenant", "x" * 101], "name: Ensure this value has at most 100 characters"),
        (["callback_stats", "--window", "10y"], "--window: Use a number and a unit"),
        (["callback_stats", "--window", "9d"], "--window: The window must be between 1m and 7d."),
        (["callback_stats", "--tenant", "nobody"], "No tenant named 'nobody'."),
        (["purge_history", "--older-than", "0"], "argument --older-than: must be at least 1 day"),
        (["purge_history", "--older-than", "week"], "'week' is not a whole number of days"),
        (["purge_history", "--batch-size", "0"], "argument --batch-size: must be at least 1"),
        (["run_dispatcher", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_name_the_problem(tenant, args, message):
    with pytest.raises(CommandError) as error:
        run(*args)

    assert message in str(error.value)


@pytest.mark.parametrize(
    ("command", "mentions"),
    [
        ("create_tenant", ["API key", "--enforce-whitelist"]),
        ("callback_stats", ["--window", "--json", "--tenant"]),
        ("purge_history", ["--older-than", "--dry-run", "--batch-size"]),
        ("run_dispatcher", ["SIGTERM"]),
        ("send_callback", ["--count", "--header", "--body-format"]),
        ("replay_dead", ["--since", "--dry-run", "6h"]),
    ],
)
def test_help_explains_the_options(command, mentions, tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", command, "--help"],
        cwd=settings.BASE_DIR,
        env=service_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for word in mentions:
        assert word in text


def test_a_bad_argument_exits_non_zero_with_the_message(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "purge_history", "--older-than", "0"],
        cwd=settings.BASE_DIR,
        env=service_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2 and "must be at least 1 day" in result.stderr
