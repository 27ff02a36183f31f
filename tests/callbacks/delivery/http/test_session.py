"""The per-process session (callbacks/delivery/http/session.py): its settings, TLS verification against
the configured CA bundle, and a session of its own in a forked process."""

import os
import time

import pytest

from callbacks.delivery import http
from callbacks.delivery.executor import send_attempt
from callbacks.delivery.http import session as http_session
from tests.callbacks.delivery.http.sending import send
from tests.factories import make_task


def test_session_settings():
    session = http.get_session()
    assert session.trust_env is False
    adapter = session.get_adapter("https://example.com/")
    assert adapter is session.get_adapter("http://example.com/")
    assert isinstance(adapter.max_retries, http.ConnectPhaseRetry)
    assert adapter._pool_maxsize == 20 and adapter._pool_connections == 100 and adapter._pool_block is False


@pytest.mark.django_db
def test_tls_with_an_untrusted_certificate_fails_as_tls(tenant, https_receiver):
    url = f"https://127.0.0.1:{https_receiver.port}/"
    result = send_attempt(make_task(tenant=tenant, url=url), attempt=1)
    assert (result.outcome, result.retryable) == ("tls", False)
    assert "certificate verify failed" in result.error
    assert https_receiver.received == []


@pytest.mark.django_db
def test_tls_with_the_configured_ca_bundle_succeeds(
    tenant, https_receiver, self_signed_cert, callbacks_settings
):
    callbacks_settings(CA_BUNDLE=str(self_signed_cert[0]))
    url = f"https://127.0.0.1:{https_receiver.port}/secure"
    result = send_attempt(make_task(tenant=tenant, url=url, payload='{"a":1}'), attempt=1)
    assert result.outcome == "success", result.error
    got = https_receiver.wait_for(1)[0]
    assert (got.path, got.body) == ("/secure", b'{"a":1}')


@pytest.mark.django_db
def test_tls_checks_the_host_name(tenant, https_receiver, self_signed_cert, callbacks_settings):
    # The certificate names 127.0.0.1 only: trusted, but not for "localhost".
    callbacks_settings(CA_BUNDLE=str(self_signed_cert[0]))
    url = f"https://localhost:{https_receiver.port}/"
    result = send_attempt(make_task(tenant=tenant, url=url), attempt=1)
    assert result.outcome == "tls"
    assert "localhost" in result.error or "hostname" in result.error
    assert https_receiver.received == []


def test_a_forked_process_builds_its_own_session(receiver):
    send(receiver.url)
    parent_session = http.get_session()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, never return into pytest
        code = 1
        try:
            fresh = http_session._state is None
            raw = send(receiver.url)
            code = 0 if fresh and raw.status_code == 200 and http.get_session() is not parent_session else 2
        finally:
            os.write(write_end, bytes([code]))
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child did not finish")
    assert os.read(read_end, 1) == b"\x00"
    os.close(read_end)
    assert os.waitstatus_to_exitcode(status) == 0
    assert http.get_session() is parent_session
    assert len(receiver.wait_for(2)) == 2
