"""End to end over TLS: real run_dispatcher and qcluster processes deliver a mixed batch to an HTTP/2
receiver and an HTTP/1.1-only one (hypercorn, certificates of a CA made in the test), each attempt
recording the protocol it went over; a tenant's client certificate presented by the worker processes."""

from collections import Counter

import pytest
import trustme

from callbacks.models import CallbackTask, TaskExecution, TaskStatus
from callbacks.services.certificates import client_certificate_set
from tests.certificates import client_pem
from tests.e2e.helpers import create_callbacks, unfinished
from tests.processes import wait_until
from tests.receivers import Reply
from tests.tls_receivers import TlsReceiver

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def ca_bundle(tmp_path):
    ca = trustme.CA()
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


def test_a_mixed_batch_goes_over_each_receivers_protocol(api, tenant, service, ca_bundle, tmp_path):
    ca, bundle = ca_bundle
    # The service processes are given this process's sealing keys (tests/processes.py), so they open
    # the client key sealed here.
    env = {"CALLBACKS_CA_BUNDLE": bundle}
    client_ca = trustme.CA()
    certificate, key = client_pem(client_ca)
    client_certificate_set(tenant=tenant, certificate=certificate, key=key, actor_type="user", actor="ops")
    server = ca.issue_cert("127.0.0.1")
    with (
        TlsReceiver(server, tmp_path=tmp_path, respond=Reply(delay=0.05)) as modern,
        TlsReceiver(server, tmp_path=tmp_path, alpn=("http/1.1",)) as legacy,
        TlsReceiver(server, tmp_path=tmp_path, client_ca=client_ca) as demanding,
    ):
        service("dispatcher", ["run_dispatcher"], **env)
        service("workers", ["qcluster"], **env)
        create_callbacks(api, 60, modern.url())
        create_callbacks(api, 40, legacy.url())
        create_callbacks(api, 10, demanding.url())
        wait_until(lambda: unfinished() == 0, timeout=120, message="all 110 callbacks to end final")

        assert Counter(CallbackTask.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED: 110}
        by_receiver = Counter(TaskExecution.objects.values_list("request_url", "http_version"))
        assert by_receiver == {(modern.url(), "2"): 60, (legacy.url(), "1.1"): 40, (demanding.url(), "2"): 10}
        assert {item.http_version for item in modern.received} == {"2"}
        assert {item.http_version for item in legacy.received} == {"1.1"}
        assert len(demanding.received) == 10 and demanding.refused == []
        # Concurrent callbacks to the HTTP/2 origin were streams at once.
        assert modern.max_in_flight > 1
