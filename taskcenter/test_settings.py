"""Settings for the test run: the production settings, with loopback receivers allowed.

The SSRF guard stays on; 127.0.0.0/8 and ::1 are exempted the way an operator exempts an
internal network, so the guard's own code runs in every delivery test. SSRF tests narrow it.
"""

import os

os.environ.setdefault("CALLBACKS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
os.environ.setdefault("CALLBACKS_VAR_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test"))
# Under pytest-xdist each worker process gets an installation directory of its own: the SQLite test
# database, the file cache, the metrics files, the wake-up fifos and the dispatcher's lock live there,
# and the tests running beside it in other workers must not see them. The workers inherit the
# controller's environment, PROMETHEUS_MULTIPROC_DIR included, so that one is set here too.
if worker := os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["CALLBACKS_VAR_DIR"] = os.path.join(os.environ["CALLBACKS_VAR_DIR"], worker)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(os.environ["CALLBACKS_VAR_DIR"], "prometheus")

# pytest imports this module before Django sets up: it is the test run's entry point, so it
# prepares the installation (var/test) the way manage.py does for the service.
from taskcenter.bootstrap import prepare

prepare()

from taskcenter.settings import *  # noqa: E402, F403

# End-to-end tests start dispatcher and qcluster processes against the test database, so an
# SQLite test database must be a file they can open, not pytest-django's in-memory default.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # One file per test run: a file left by an earlier run keeps -wal/-shm companions that make
    # a freshly created database fail with "disk I/O error". tests/conftest.py removes it after.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test_db_{os.getpid()}.sqlite3")}  # noqa: F405

# Schedules firing every second or two let the scheduling tests see many fires in seconds; the
# installation's default (a minute) is tested on its own (tests/callbacks/services/test_schedule_limits.py).
CALLBACKS["SCHEDULE_MIN_INTERVAL_SECONDS"] = 1  # noqa: F405
