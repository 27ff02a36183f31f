"""docs/configuration.md names every environment variable the settings read, with the bounds of
callbacks/domain/bounds.py."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from callbacks.domain import bounds

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "configuration.md").read_text()

# Run in a fresh interpreter: every variable looked up while the installation is prepared and the
# settings load, whatever helper looks it up.
_RECORD = """
import json, os
real = os.environ
read = set()

class Recording(dict):
    def get(self, key, default=None):
        read.add(key)
        return real.get(key, default)
    def __getitem__(self, key):
        read.add(key)
        return real[key]
    def __contains__(self, key):
        read.add(key)
        return key in real
    def setdefault(self, key, value):
        read.add(key)
        return real.setdefault(key, value)

os.environ = Recording(real)
from taskcenter.bootstrap import prepare
prepare()
import taskcenter.settings
print(json.dumps(sorted(read)))
"""

# Bounds of variables outside settings.CALLBACKS, by variable.
OTHER_BOUNDS = {
    "CALLBACKS_API_REQUEST_LIMIT": bounds.API_REQUEST_LIMIT,
    "CALLBACKS_WORKER_RECYCLE": bounds.WORKER_RECYCLE,
    "CALLBACKS_BROKER_POLL_SECONDS": bounds.BROKER_POLL_SECONDS,
    "DB_CONN_MAX_AGE": bounds.DB_CONN_MAX_AGE,
    "SECURE_HSTS_SECONDS": bounds.HSTS_SECONDS,
}
ALL_BOUNDS = {f"CALLBACKS_{key}": bound for key, bound in bounds.SETTINGS.items()} | OTHER_BOUNDS


def _variables_read(tmp_path) -> list[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST", "CALLBACKS_", "SECRET_KEY"))
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["CALLBACKS_VAR_DIR"] = str(tmp_path / "var")
    done = subprocess.run(
        [sys.executable, "-c", _RECORD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rows() -> dict[str, list[str]]:
    """Each table row's cells, by every variable named in its first cell."""
    rows = {}
    for line in DOC.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            for name in re.findall(r"`([A-Z0-9_]+)`", cells[0]):
                rows[name] = cells
    return rows


def bound_text(bound: bounds.Bound) -> str:
    def number(value):
        return str(int(value)) if float(value).is_integer() else repr(float(value))

    if bound.minimum is not None and bound.maximum is not None:
        span = f"{number(bound.minimum)} to {number(bound.maximum)}"
    elif bound.minimum is not None:
        span = f"at least {number(bound.minimum)}"
    else:
        span = f"at most {number(bound.maximum)}"
    return ("integer, " if bound.kind is int else "number, ") + span


def test_every_variable_the_settings_read_is_documented(tmp_path):
    read = _variables_read(tmp_path)
    assert "CALLBACKS_MAX_RETRIES" in read and "SECRET_KEY_FILE" in read  # the recording works
    missing = [name for name in read if f"`{name}`" not in DOC]
    assert missing == []


def test_every_setting_has_a_row_of_its_own_in_a_table(tmp_path):
    rows = _rows()
    secrets_files = {name for name in _variables_read(tmp_path) if name.endswith("_FILE")}
    # The *_FILE variants are described once, in "Secrets in files"; every other variable has its row.
    assert sorted(set(_variables_read(tmp_path)) - secrets_files - set(rows)) == []


@pytest.mark.parametrize("name", sorted(ALL_BOUNDS))
def test_the_documented_bounds_are_those_of_the_bounds_table(name):
    cells = _rows().get(name)
    assert cells is not None, f"{name} has no row"
    assert cells[2] == bound_text(ALL_BOUNDS[name])
