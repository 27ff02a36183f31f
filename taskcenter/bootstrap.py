"""What a process of the service prepares before Django loads the settings.

The settings only read. Everything that writes lives here and runs once per process, from
the entry points (manage.py, taskcenter/wsgi.py, taskcenter/asgi.py, the test settings),
before anything imports prometheus_client or the settings:

- the installation directory (CALLBACKS_VAR_DIR, default var/) and its static/ directory,
  which whitenoise expects to exist;
- PROMETHEUS_MULTIPROC_DIR, default var/prometheus, so the metrics of the workers and the
  dispatcher reach the web process's /metrics. prometheus_client reads it once, when first
  imported, and child processes inherit it;
- var/secret_key, when neither SECRET_KEY nor SECRET_KEY_FILE is set: generated once, then read by every process of
  the installation (django-q2 signs broker payloads with it, so processes started by hand,
  runserver, run_dispatcher, qcluster, agree without set-up);
- the embedded SQLite database file, when DATABASE_URL names one: created empty and readable by
  the service's user only, before SQLite would create it with the process's umask (0644 as a
  rule). It holds tenants' signing secrets; SQLite gives its -wal and -shm files the same mode.

Both files are 0600: readable and writable by the user the service runs as, no one else.
"""

import os
import secrets
from pathlib import Path

import dj_database_url

from taskcenter.env import ConfigError, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    """The installation's own files: SQLite database, cache, metrics, secret key, locks."""
    return Path(env_str("CALLBACKS_VAR_DIR", str(BASE_DIR / "var")))


def secret_key_path() -> Path:
    return var_dir() / "secret_key"


def database_url() -> str:
    """DATABASE_URL (or the file DATABASE_URL_FILE names), else the embedded SQLite database under the
    installation directory."""
    return env_secret("DATABASE_URL", f"sqlite:///{var_dir() / 'db.sqlite3'}")


def prepare() -> None:
    """Create the installation's directories and secret key; set PROMETHEUS_MULTIPROC_DIR."""
    var = var_dir()
    (var / "static").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(var / "prometheus"))
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
    if not (os.environ.get("SECRET_KEY") or os.environ.get("SECRET_KEY_FILE")):
        path = secret_key_path()
        try:
            _write_secret_key_once(path)
        except OSError as exc:
            raise ConfigError(f"SECRET_KEY is not set and {path} cannot be written: {exc}") from exc
    _create_private_sqlite_file()


def _create_private_sqlite_file() -> None:
    url = database_url()
    if not url.startswith("sqlite:"):
        return
    name = dj_database_url.parse(url)["NAME"]
    if not name or name == ":memory:":
        return
    try:
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return  # the installation's own, made here before or as the operator chose
    except OSError as exc:
        raise ConfigError(f"DATABASE_URL names {name}, which cannot be created: {exc}") from exc


def _write_secret_key_once(path: Path) -> None:
    if path.exists():
        return
    # Written aside, then linked into place: processes started at the same moment on a fresh
    # var/ never read a half-written (empty) key, and all end up with the one that won.
    draft = path.with_name(f".secret_key.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(50))
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
