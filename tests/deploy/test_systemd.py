"""deploy/systemd: the units load in systemd (`systemd-analyze verify`) and follow the supervision rules
of docs/deploy.md.

The units name the installation /opt/taskcenter (docs/install.md); verify checks that every command they
run exists, so here they are checked with that path pointing at this checkout.
"""

import configparser
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
SERVICES = ["taskcenter-web.service", "taskcenter-dispatcher.service", "taskcenter-worker@.service"]


def _read(name: str) -> configparser.ConfigParser:
    # strict=False: systemd allows a key more than once (EnvironmentFile); the last one is enough here.
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(UNITS / name)
    return unit


def test_systemd_analyze_verify_accepts_every_unit(tmp_path):
    for unit in UNITS.glob("taskcenter*"):
        text = unit.read_text().replace("/opt/taskcenter", str(ROOT))
        (tmp_path / unit.name).write_text(text)
    # A template is verified through an instance of it.
    (tmp_path / "taskcenter-worker@default.service").write_text(
        (tmp_path / "taskcenter-worker@.service").read_text()
    )
    names = [
        "taskcenter-web.service",
        "taskcenter-dispatcher.service",
        "taskcenter-worker@default.service",
        "taskcenter.target",
    ]
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(tmp_path / name) for name in names)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 on directives it ignores; it says so on stderr, which must stay empty.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.mark.parametrize("name", SERVICES)
def test_every_process_restarts_and_stops_by_its_main_process(name):
    service = _read(name)["Service"]
    assert service["Restart"] == "always"
    # SIGTERM to the main process only; the rest are killed only after the timeout.
    assert service["KillMode"] == "mixed"
    assert service["EnvironmentFile"]
    assert service["User"] != "root"


def test_workers_get_the_time_to_finish_callbacks_in_flight():
    service = _read("taskcenter-worker@.service")["Service"]
    # CALLBACKS_SHUTDOWN_GRACE_SECONDS is 25 s and the cluster exits within 30 s (docs/deploy.md).
    assert service["TimeoutStopSec"] == "35"
    assert service["Environment"] == "Q_CLUSTER_NAME=%i"
    assert "manage.py qcluster" in service["ExecStart"]


def test_web_runs_gunicorn_with_the_shipped_configuration():
    service = _read("taskcenter-web.service")["Service"]
    assert service["ExecStart"].split()[:3] == [
        "/opt/taskcenter/.venv/bin/gunicorn",
        "--config",
        "/opt/taskcenter/deploy/gunicorn.conf.py",
    ]


def test_the_target_starts_every_process():
    wants = _read("taskcenter.target")["Unit"]["Wants"].split()
    assert sorted(wants) == [
        "taskcenter-dispatcher.service",
        "taskcenter-web.service",
        "taskcenter-worker@default.service",
    ]


def test_procfile_runs_the_same_processes():
    lines = dict(
        line.split(": ", 1) for line in (ROOT / "deploy" / "Procfile").read_text().splitlines() if line
    )
    assert "--config deploy/gunicorn.conf.py" in lines["web"]
    assert lines["dispatcher"].endswith("manage.py run_dispatcher")
    assert lines["worker"].endswith("manage.py qcluster")
