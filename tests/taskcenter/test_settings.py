"""taskcenter.settings only reads: importing it writes nothing and leaves the environment alone.

Each case imports the settings in a fresh interpreter, as a process of the service would, with
an installation directory (CALLBACKS_VAR_DIR) that does not exist yet.
"""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run in the child: the environment before and after, and whether the import went through.
_IMPORT_SETTINGS = """
import json, os, sys
before = dict(os.environ)
try:
    {prepare}
    import taskcenter.settings as settings
    outcome = {{"key": settings.SECRET_KEY}}
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
    found = _import_settings(tmp_path / "var", SECRET_KEY="k" * 50)
    assert found.get("key") == "k" * 50, found
    assert _created(tmp_path) == []
    assert found["changed"] == []


def test_import_without_a_key_fails_loudly_and_writes_nothing(tmp_path):
    found = _import_settings(tmp_path / "var")
    assert "SECRET_KEY" in found.get("error", ""), found
    assert _created(tmp_path) == []
    assert found["changed"] == []


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


def test_prepare_keeps_a_given_metrics_directory_and_key(tmp_path):
    metrics = tmp_path / "metrics"
    found = _import_settings(
        tmp_path / "var", prepare=True, SECRET_KEY="s" * 50, PROMETHEUS_MULTIPROC_DIR=str(metrics)
    )
    assert found["key"] == "s" * 50 and found["changed"] == []
    assert metrics.is_dir() and not (tmp_path / "var" / "secret_key").exists()
