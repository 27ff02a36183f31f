"""docs/install.md: the backup and restore it describes bring back a database the service runs on."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from callbacks.models import CallbackTask
from tests.processes import database_url, service_env

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "install.md").read_text()

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="pg_dump and pg_restore are PostgreSQL's"
)


def _client_args() -> list[str]:
    settings = connection.settings_dict
    return [
        "--host",
        settings["HOST"] or "127.0.0.1",
        "--port",
        str(settings["PORT"] or 5432),
        "--username",
        settings["USER"],
    ]


def _run(*args: str, env: dict | None = None) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_dump_restored_as_documented_runs_the_service(transactional_db, api, tmp_path):
    assert "pg_dump --format=custom" in DOC and "pg_restore --no-owner --role=taskcenter" in DOC
    created = api.post(
        "/api/v1/callbacks/", {"url": "https://receiver.example.com/hook", "body": {"n": 1}}, format="json"
    )
    assert created.status_code == 201
    source = connection.settings_dict["NAME"]
    restored = f"{source}_restored"
    dump = tmp_path / "taskcenter.dump"
    _run("pg_dump", *_client_args(), "--format=custom", f"--file={dump}", source)
    _run("dropdb", *_client_args(), "--if-exists", restored)
    _run("createdb", *_client_args(), restored)
    try:
        user = connection.settings_dict["USER"]
        _run("pg_restore", *_client_args(), "--no-owner", f"--role={user}", f"--dbname={restored}", str(dump))
        env = service_env(tmp_path / "var", DATABASE_URL=database_url().rsplit("/", 1)[0] + f"/{restored}")
        manage = [sys.executable, str(ROOT / "manage.py")]
        _run(*manage, "migrate", "--check", env=env)  # every migration is there: nothing to apply
        count = _run(
            *manage,
            "shell",
            "-c",
            "from callbacks.models import CallbackTask; print(CallbackTask.objects.count())",
            env=env,
        )
        assert int(count.strip().splitlines()[-1]) == CallbackTask.objects.count() == 1
    finally:
        _run("dropdb", *_client_args(), "--if-exists", "--force", restored)
