"""docs/api.md: the curl examples run as written, in order, against the service as production runs it
(gunicorn with deploy/gunicorn.conf.py) on the test database."""

import subprocess

from callbacks.models import CallbackSchedule, CallbackTask, TaskStatus
from tests.deploy.web import Gunicorn
from tests.docs.snippets import snippets
from tests.processes import service_env


def test_the_curl_examples_run_against_a_live_service(transactional_db, new_tenant, tmp_path):
    blocks = snippets("api.md", "curl")
    assert len(blocks) >= 6
    script = tmp_path / "examples.sh"
    script.write_text("set -euo pipefail\n" + "\n".join(blocks) + "\n")
    with Gunicorn(service_env(tmp_path / "var", WEB_CONCURRENCY=1), tmp_path / "web.log") as web:
        web.wait_ready()
        env = {
            "PATH": "/usr/bin:/bin",
            "TC_URL": f"http://127.0.0.1:{web.port}",
            "TC_KEY": new_tenant.api_key,
        }
        done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

    # What the examples said they did, they did.
    first = CallbackTask.objects.get(tenant=new_tenant.tenant, business_id="order-42")
    assert first.status == TaskStatus.CANCELLED
    assert list(
        CallbackTask.objects.filter(ordering_key="customer-7")
        .order_by("created_at")
        .values_list("payload", flat=True)
    ) == ['{"customer":7,"event":"created"}', '{"customer":7,"event":"verified"}']
    assert CallbackSchedule.objects.get(tenant=new_tenant.tenant).paused
    assert done.stdout.rstrip().endswith("HTTP 400")
    assert '"url"' in done.stdout.rstrip().splitlines()[-2]
