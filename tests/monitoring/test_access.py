"""/metrics and the details of /readyz, restricted by MONITORING_TOKEN or MONITORING_ALLOWED_NETWORKS."""

import ipaddress

import pytest

TOKEN = "t" * 32


@pytest.fixture
def restricted(settings):
    def restrict(*, token="", networks=()):
        settings.MONITORING_TOKEN = token
        settings.MONITORING_ALLOWED_NETWORKS = [ipaddress.ip_network(n) for n in networks]

    return restrict


def test_open_to_anyone_when_nothing_is_set(client, db, restricted):
    restricted()
    assert client.get("/metrics").status_code == 200
    assert "checks" in client.get("/readyz").json()


def test_metrics_need_the_token(client, db, restricted):
    restricted(token=TOKEN)
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == 'Bearer realm="monitoring"'
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    answered = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert answered.status_code == 200
    assert b"callbacks_processes_alive" in answered.content


def test_readiness_keeps_its_status_code_and_hides_its_details(client, db, restricted):
    restricted(token=TOKEN)
    hidden = client.get("/readyz")
    shown = client.get("/readyz", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert hidden.status_code == shown.status_code  # what a load balancer reads is unchanged
    assert set(hidden.json()) == {"status"}
    assert "database" in shown.json()["checks"]


def test_allowed_networks_are_matched_against_the_direct_peer(client, db, restricted):
    restricted(networks=["10.1.0.0/16"])
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 403
    # A forwarded header is written by the client: it never opens the door.
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="10.1.2.3").status_code == 403


def test_the_token_or_the_network_either_will_do(client, db, restricted):
    restricted(token=TOKEN, networks=["127.0.0.0/8"])
    assert client.get("/metrics").status_code == 200  # the test client's peer is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.1").status_code == 401
    assert (
        client.get("/metrics", REMOTE_ADDR="192.0.2.1", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code
        == 200
    )
