"""taskcenter.settings only reads: importing it writes nothing and leaves the environment alone.

Each case imports the settings in a fresh interpreter, as a process of the service would, with
an installation directory (CALLBACKS_VAR_DIR) that does not exist yet.
"""

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Run in the child: the environment before and after, and whether the import went through.
_IMPORT_SETTINGS = """
import json, os, sys
before = dict(os.environ)
try:
    {prepare}
    import taskcenter.settings as settings
    options = settings.DATABASES["default"].get("OPTIONS", {{}})
    outcome = {{"key": settings.SECRET_KEY, "prepare_threshold": options.get("prepare_threshold", "unset")}}
except Exception as exc:
    outcome = {{"error": f"{{type(exc).__name__}}: {{exc}}"}}
after = dict(os.environ)
changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
print(json.dumps({{**outcome, "changed": changed}}))
"""


def _import_settings(var_dir: Path, *, prepare: bool = False, **env) -> dict:
    child_env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    for name in ("SECRET_KEY", "PROMETHEUS_MULTIPROC_DIR", "DJANGO_SETTINGS_MODULE"):
        child_env.pop(name, None)
    child_env.update(CALLBACKS_VAR_DIR=str(var_dir), **env)
    code = _IMPORT_SETTINGS.format(
        prepare="import taskcenter.bootstrap; taskcenter.bootstrap.prepare()" if prepare else "pass"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _created(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def test_import_with_a_secret_key_writes_nothing(tmp_path):
    found = _import_settings(tmp_path / "var", SECRET_KEY="key-for-tests-" * 4)
    assert found.get("key") == "key-for-tests-" * 4, found
    assert _created(tmp_path) == []
    assert found["changed"] == []


def test_import_without_a_key_fails_loudly_and_writes_nothing(tmp_path):
    found = _import_settings(tmp_path / "var")
    assert "SECRET_KEY" in found.get("error", ""), found
    assert _created(tmp_path) == []
    assert found["changed"] == []


@pytest.mark.parametrize("key", ["short-key", "a" * 64, "django-insecure-" + "x1y2z3" * 8])
def test_a_weak_secret_key_stops_start_up_without_showing_it(tmp_path, key):
    found = _import_settings(tmp_path / "var", SECRET_KEY=key)
    assert found["error"].startswith("ConfigError: SECRET_KEY is too weak"), found
    assert key not in found["error"]


@pytest.mark.parametrize(("variable", "value"), [("LOG_LEVEL", "VERBOSE"), ("LOG_LEVEL_DJANGO_Q", "loud")])
def test_an_unknown_log_level_names_the_variable(tmp_path, variable, value):
    found = _import_settings(tmp_path / "var", SECRET_KEY="key-for-tests-" * 4, **{variable: value})
    assert found["error"] == (
        f"ConfigError: {variable}={value!r} is not one of: DEBUG, INFO, WARNING, ERROR, CRITICAL"
    ), found


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "NaN", "1e400", "Infinity"])
def test_numbers_that_are_not_finite_are_refused(tmp_path, value):
    found = _import_settings(
        tmp_path / "var", SECRET_KEY="key-for-tests-" * 4, CALLBACKS_QUEUED_LEASE_SECONDS=value
    )
    assert found["error"] == f"ConfigError: CALLBACKS_QUEUED_LEASE_SECONDS={value!r}: must be a number", found


def test_prepare_makes_the_installation_once(tmp_path):
    """What the entry points (manage.py, wsgi, asgi) do before Django loads the settings."""
    var_dir = tmp_path / "var"
    first = _import_settings(var_dir, prepare=True)
    assert first["changed"] == ["PROMETHEUS_MULTIPROC_DIR"]
    assert (var_dir / "prometheus").is_dir() and (var_dir / "static").is_dir()
    key_file = var_dir / "secret_key"
    assert first["key"] == key_file.read_text().strip() and len(first["key"]) > 40
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # Every later process of the installation reads the same key.
    assert _import_settings(var_dir, prepare=True)["key"] == first["key"]
    assert _import_settings(var_dir)["key"] == first["key"]


def test_prepare_creates_the_embedded_database_readable_by_the_service_only(tmp_path):
    var_dir = tmp_path / "var"
    database = var_dir / "db.sqlite3"
    _import_settings(var_dir, prepare=True, DATABASE_URL=f"sqlite:///{database}")
    # The service's first connection, under the usual umask, writes into the file prepare made.
    previous_umask = os.umask(0o022)
    try:
        with sqlite3.connect(database) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("CREATE TABLE t (x)")
            wal = Path(f"{database}-wal")
            assert stat.S_IMODE(wal.stat().st_mode) == 0o600
    finally:
        os.umask(previous_umask)
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE((var_dir / "secret_key").stat().st_mode) == 0o600


def test_prepare_keeps_a_given_metrics_directory_and_key(tmp_path):
    metrics = tmp_path / "metrics"
    found = _import_settings(
        tmp_path / "var",
        prepare=True,
        SECRET_KEY="secret-for-tests-" * 3,
        PROMETHEUS_MULTIPROC_DIR=str(metrics),
    )
    assert found["key"] == "secret-for-tests-" * 3 and found["changed"] == []
    assert metrics.is_dir() and not (tmp_path / "var" / "secret_key").exists()


def test_manage_py_reports_a_bad_setting_in_one_line(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(CALLBACKS_VAR_DIR=str(tmp_path / "var"), LOG_LEVEL="VERBOSE")
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "configuration error: LOG_LEVEL='VERBOSE' is not one of: DEBUG, INFO, WARNING, ERROR, CRITICAL"
    )


@pytest.mark.parametrize(
    ("configured", "threshold"),
    [({}, 2**31 - 1), ({"DB_PREPARED_STATEMENTS": "false"}, None)],
    ids=["default", "off"],
)
def test_postgresql_prepares_statements_only_where_asked_unless_turned_off(tmp_path, configured, threshold):
    found = _import_settings(
        tmp_path / "var",
        SECRET_KEY="key-for-tests-" * 4,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused",
        **configured,
    )
    assert found["prepare_threshold"] == threshold, found


def test_sqlite_has_no_prepared_statements_setting(tmp_path):
    found = _import_settings(
        tmp_path / "var", SECRET_KEY="key-for-tests-" * 4, DATABASE_URL="sqlite:///:memory:"
    )
    assert found["prepare_threshold"] == "unset", found
