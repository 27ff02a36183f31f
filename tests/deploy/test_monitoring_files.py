"""deploy/grafana and deploy/prometheus: the rules pass promtool, and every metric the dashboard and the
rules name is exported by a real /metrics after real deliveries."""

import json
import re
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.web import Gunicorn
from tests.e2e.helpers import create_callbacks
from tests.processes import service_env, wait_until
from tests.receivers import Receiver, Reply

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "taskcenter.json"
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMTOOL = "/usr/bin/promtool"  # Debian's prometheus package; `make test` installs it
METRIC = re.compile(r"\bcallbacks_[a-z0-9_]+")


def _promtool(*args):
    return subprocess.run([PROMTOOL, *args], cwd=RULES.parent, capture_output=True, text=True, timeout=120)


def test_promtool_accepts_the_alert_rules():
    done = _promtool("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alert_rules_fire_on_their_cases_and_stay_quiet_when_healthy():
    done = _promtool("test", "rules", "alerts.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def _dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def _rule_expressions() -> list[str]:
    # The rules file is YAML; its expressions are the values of "expr:", some folded over lines (">").
    expressions, current = [], None
    for line in RULES.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("expr:"):
            current = [stripped[len("expr:") :].strip(" >")]
            expressions.append(current)
        elif current is not None and line.startswith(" " * 10) and not re.match(r"\s*\w+:", line):
            current.append(stripped)
        else:
            current = None
    return [" ".join(parts) for parts in expressions]


def test_the_dashboard_shows_what_operators_watch():
    titles = " ".join(panel["title"].lower() for panel in json.loads(DASHBOARD.read_text())["panels"])
    for subject in (
        "throughput",
        "latency",
        "success rate",
        "errors by class",
        "in flight",
        "lag",
        "queue depth",
        "breakers",
        "processes alive",
    ):
        assert subject in titles


@pytest.mark.e2e
def test_every_metric_named_by_the_dashboard_and_the_rules_is_exported(api, service, tmp_path):
    named = {name for expr in _dashboard_expressions() + _rule_expressions() for name in METRIC.findall(expr)}
    assert len(named) >= 10  # the rules parsed: "expr:" lines were found
    # One breaker opening is enough to show its counter; one retry-less failure makes a dead letter.
    env = {"CALLBACKS_BREAKER_FAILURE_THRESHOLD": 1, "CALLBACKS_HEARTBEAT_SECONDS": 0.5}
    service("dispatcher", ["run_dispatcher"], **env)
    service("workers", ["qcluster"], **env)
    with Receiver() as good, Receiver(Reply(status=500)) as failing:
        create_callbacks(api, 20, good.url)
        create_callbacks(api, 2, failing.url, max_retries=0)
        create_callbacks(api, 1, good.url, delay_seconds=3600)  # waits: the queue is not empty
        with Gunicorn(service_env(tmp_path / "var", WEB_CONCURRENCY=1), tmp_path / "web.log") as web:
            web.wait_ready()

            def exported():
                status, page = web.get("/metrics")
                assert status == 200
                samples = {
                    sample.name
                    for family in text_string_to_metric_families(page.decode())
                    for sample in family.samples
                }
                return (
                    samples
                    if {"callbacks_dead_letters_total", "callbacks_breaker_openings_total"} <= samples
                    else None
                )

            samples = wait_until(
                exported, timeout=120, interval=0.5, message="deliveries to show in /metrics"
            )
            wait_until(lambda: len(good.received) == 20, timeout=60, message="every good callback received")
            samples = exported()
    assert sorted(named - samples) == []
