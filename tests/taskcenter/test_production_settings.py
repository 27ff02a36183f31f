"""The production environment of deploy/taskcenter.env, as docs/install.md sets it up: `manage.py check
--deploy` finds nothing to warn about, and the secrets come from files (the *_FILE variables)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet
from django.db import connection

from tests.processes import database_url

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "taskcenter.env"


def production_env(tmp_path: Path, db_url: str) -> dict:
    """The template's variables, its /etc and /var paths moved under tmp_path and the secret files written
    as the install guide writes them."""
    secrets = tmp_path / "etc" / "secrets"
    secrets.mkdir(parents=True)
    (secrets / "secret_key").write_text(os.urandom(40).hex() + "\n")
    (secrets / "encryption_keys").write_text(Fernet.generate_key().decode() + "\n")
    (secrets / "database_url").write_text(db_url + "\n")
    (secrets / "redis_url").write_text("redis://127.0.0.1:6379/15\n")
    (secrets / "monitoring_token").write_text("m" * 32 + "\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    for line in TEMPLATE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = (
                value.replace("/etc/taskcenter/secrets", str(secrets))
                .replace("/var/lib/taskcenter", str(tmp_path / "var"))
                .replace("/run/taskcenter", str(tmp_path / "run"))
            )
    return env


def _manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_under_the_documented_production_environment_warns_of_nothing(tmp_path, db):
    env = production_env(tmp_path, database_url())
    assert "SECRET_KEY" not in env and "DATABASE_URL" not in env  # only in files
    done = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "System check identified no issues (0 silenced)."
    assert "WARNINGS" not in done.stderr


def test_the_settings_take_the_secrets_from_their_files(tmp_path, db):
    env = production_env(tmp_path, database_url())
    code = (
        "import django; django.setup(); from django.conf import settings as s; import json; "
        "print(json.dumps([s.SECRET_KEY, s.DATABASES['default']['NAME'], s.REDIS_URL, s.CALLBACKS_ENCRYPTION_KEYS, "
        "s.MONITORING_TOKEN, s.SECURE_PROXY_SSL_HEADER, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    key, db_name, redis_url, fernet_keys, token, proxy_header, hsts, secure_cookie = json.loads(done.stdout)
    secrets = tmp_path / "etc" / "secrets"
    assert key == (secrets / "secret_key").read_text().strip()
    assert db_name == connection.settings_dict["NAME"]  # the database the URL in its file names
    assert redis_url == "redis://127.0.0.1:6379/15"
    assert fernet_keys == [(secrets / "encryption_keys").read_text().strip()]
    assert token == "m" * 32
    assert proxy_header == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert (hsts, secure_cookie) == (31536000, True)


def test_the_embedded_set_up_warns_about_what_production_must_set(tmp_path):
    """Without the production variables check --deploy names them, so the test above is not vacuous."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CALLBACKS_VAR_DIR": str(tmp_path / "var")}
    done = _manage(env, "check", "--deploy")
    for check in ("security.W004", "security.W008", "security.W012", "security.W016", "callbacks.W002"):
        assert check in done.stderr + done.stdout


def test_a_short_monitoring_token_stops_start_up(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CALLBACKS_VAR_DIR": str(tmp_path / "var")}
    done = _manage({**env, "MONITORING_TOKEN": "short"}, "check")
    assert done.returncode != 0
    assert "MONITORING_TOKEN must be at least 16 characters" in done.stderr
