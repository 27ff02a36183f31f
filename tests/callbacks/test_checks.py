"""System checks for TLS settings: a CA bundle that cannot be used stops start-up with an error."""

import pytest
from django.core.checks import run_checks
from django.db import connection

from callbacks.checks import check_autovacuum, check_ca_bundle, check_secret_header_patterns


def ids(messages):
    return [message.id for message in messages]


def test_no_bundle_is_fine(settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "CA_BUNDLE": ""}
    assert check_ca_bundle(None) == []


def test_a_missing_bundle_is_an_error(settings, tmp_path):
    settings.CALLBACKS = {**settings.CALLBACKS, "CA_BUNDLE": str(tmp_path / "missing.pem")}
    assert ids(check_ca_bundle(None)) == ["callbacks.E001"]
    assert "callbacks.E001" in ids(run_checks())


def test_a_bundle_without_certificates_is_an_error(settings, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    settings.CALLBACKS = {**settings.CALLBACKS, "CA_BUNDLE": str(junk)}
    assert ids(check_ca_bundle(None)) == ["callbacks.E002"]


def test_a_real_bundle_passes(settings):
    import certifi

    settings.CALLBACKS = {**settings.CALLBACKS, "CA_BUNDLE": certifi.where()}
    assert check_ca_bundle(None) == []


def test_a_directory_of_certificates_passes(settings, tmp_path):
    settings.CALLBACKS = {**settings.CALLBACKS, "CA_BUNDLE": str(tmp_path)}
    assert check_ca_bundle(None) == []


def test_bad_secret_header_patterns_are_errors(settings):
    settings.CALLBACKS = {**settings.CALLBACKS, "SECRET_HEADER_PATTERNS": ["x-ok-.*", "x-(bad"]}
    assert ids(check_secret_header_patterns(None)) == ["callbacks.E003"]


def test_no_task_can_turn_certificate_checks_off(api):
    for field in ("verify", "verify_tls", "insecure"):
        response = api.post(
            "/api/v1/callbacks/", {"url": "https://example.com/", field: False}, format="json"
        )
        assert response.status_code == 400
        assert response.json()["error"]["fields"][field] == ["unknown field"]


def test_a_whole_address_family_in_allowed_networks_is_a_warning(settings):
    import ipaddress

    networks = [ipaddress.ip_network(text) for text in ("0.0.0.0/0", "::/0", "10.1.0.0/16")]
    settings.CALLBACKS = {**settings.CALLBACKS, "ALLOWED_NETWORKS": networks}
    warnings = [message for message in run_checks() if message.id == "callbacks.W003"]
    assert [("0.0.0.0/0" in w.msg, "::/0" in w.msg) for w in warnings] == [(True, False), (False, True)]
    assert all("SSRF guard is off" in w.msg for w in warnings)


def test_internal_networks_in_allowed_networks_are_no_warning(settings):
    import ipaddress

    settings.CALLBACKS = {**settings.CALLBACKS, "ALLOWED_NETWORKS": [ipaddress.ip_network("10.1.0.0/16")]}
    assert "callbacks.W003" not in ids(run_checks())


on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="autovacuum is PostgreSQL's")


@pytest.mark.django_db
@on_postgresql
def test_autovacuum_off_is_a_warning_when_the_database_is_checked():
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        (autovacuum,) = cursor.fetchone()

    assert ("callbacks.W004" in ids(check_autovacuum(None, databases=["default"]))) == (autovacuum != "on")


@pytest.mark.django_db
@on_postgresql
def test_statistics_not_collected_are_a_warning_as_autovacuum_off_is():
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL track_counts = off")  # for this test's transaction only

    assert ids(check_autovacuum(None, databases=["default"])) == ["callbacks.W004"]


def test_autovacuum_is_not_asked_without_the_database_checks():
    # No django_db mark: a query here raises.
    assert check_autovacuum(None, databases=None) == []
