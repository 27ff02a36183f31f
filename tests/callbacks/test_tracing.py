"""Tracing off (callbacks/tracing.py): without OTEL_EXPORTER_OTLP_ENDPOINT nothing of OpenTelemetry is
even imported, while callbacks are created, dispatched and sent."""

import subprocess
import sys

import pytest

from tests.processes import ROOT, service_env


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint, enabled", [("", False), ("http://127.0.0.1:9", True)])
def test_without_an_exporter_the_opentelemetry_sdk_is_never_imported(tmp_path, endpoint, enabled):
    probe = (
        "import sys, django\n"
        "from taskcenter.bootstrap import prepare\n"
        "prepare()\n"
        "django.setup()\n"
        "from callbacks import tracing\n"
        "from callbacks.delivery import dispatcher, executor, worker\n"
        "from callbacks.services import tasks\n"
        "from callbacks.api import views\n"
        "with tracing.span('nothing', kind='internal') as span:\n"
        "    pass\n"
        "print(tracing.enabled(), sorted({m.split('.')[0] for m in sys.modules if m.startswith('opentelemetry')}))\n"
    )
    env = service_env(tmp_path)
    for name in [name for name in env if name.startswith("OTEL_")]:
        del env[name]
    if endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        env["OTEL_BSP_EXPORT_TIMEOUT"] = "100"  # nobody listens there: give up at once at exit
    finished = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == 0, finished.stderr
    expected = "True ['opentelemetry']" if enabled else "False []"
    assert finished.stdout.strip().splitlines()[-1] == expected
