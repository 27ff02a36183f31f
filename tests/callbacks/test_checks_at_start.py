"""The checks run_dispatcher and qcluster run when they start: the delivery settings' checks
stop them on a bad setting, and the web side's checks (which import the URLconf, DRF and
every view) are left to the processes that serve it."""

import subprocess
import sys

import pytest

from tests.processes import ROOT, modules_loaded, service_env


@pytest.mark.django_db
@pytest.mark.parametrize("command", ["run_dispatcher", "qcluster"])
def test_a_bad_delivery_setting_stops_the_process_at_start(command, tmp_path):
    env = service_env(tmp_path, CALLBACKS_CA_BUNDLE=str(tmp_path / "missing.pem"))
    finished = subprocess.run(
        [sys.executable, "manage.py", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert finished.returncode != 0
    assert "callbacks.E001" in finished.stderr


@pytest.mark.django_db
@pytest.mark.parametrize("command", ["run_dispatcher", "qcluster"])
def test_the_start_up_checks_leave_the_web_side_unloaded(command, tmp_path):
    # What BaseCommand.execute does before handle(), in a process of its own.
    code = (
        "from django.core.management import get_commands, load_command_class\n"
        f"command = load_command_class(get_commands()['{command}'], '{command}')\n"
        "tags = command.requires_system_checks\n"
        "command.check() if tags == '__all__' else command.check(tags=tags)\n"
    )
    web_side = ("taskcenter.urls", "rest_framework.views", "drf_spectacular.views")
    assert modules_loaded(tmp_path, code, web_side) == []
