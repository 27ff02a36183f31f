"""A tenant's TLS material (callbacks/services/certificates.py, checked by callbacks/domain/certificates.py):
refused with the reason and nothing stored when bad, the key sealed and never shown, every change audited."""

from datetime import UTC, datetime, timedelta

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from callbacks.domain.vocabulary import ActorType
from callbacks.errors import ApplicationError
from callbacks.models import AuditLog, Tenant
from callbacks.services.certificates import (
    ca_certificates_set,
    client_certificate_remove,
    client_certificate_set,
    tls_state,
)
from tests.certificates import ca_pem, client_pem

pytestmark = pytest.mark.django_db
WHO = {"actor_type": ActorType.USER, "actor": "ops"}


def refusal(call) -> dict:
    with pytest.raises(ApplicationError) as caught:
        call()
    return caught.value.fields


def encrypted(key_pem: str) -> str:
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()


def test_bad_certificates_and_keys_are_refused_with_the_reason_and_nothing_is_stored(tenant):
    cert, key = client_pem()
    _, other_key = client_pem()
    expired_cert, expired_key = client_pem(
        not_before=datetime(2020, 1, 1, tzinfo=UTC), not_after=datetime(2020, 2, 1, tzinfo=UTC)
    )
    cases = {
        "not pem": (lambda: client_certificate_set(tenant=tenant, certificate="hello", key=key, **WHO)),
        "broken pem": (
            lambda: client_certificate_set(
                tenant=tenant,
                certificate="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                key=key,
                **WHO,
            )
        ),
        "someone else's key": (
            lambda: client_certificate_set(tenant=tenant, certificate=cert, key=other_key, **WHO)
        ),
        "expired": (
            lambda: client_certificate_set(tenant=tenant, certificate=expired_cert, key=expired_key, **WHO)
        ),
        "encrypted key": (
            lambda: client_certificate_set(tenant=tenant, certificate=cert, key=encrypted(key), **WHO)
        ),
        "no key": (lambda: client_certificate_set(tenant=tenant, certificate=cert, key="", **WHO)),
    }
    reasons = {name: refusal(call) for name, call in cases.items()}
    assert reasons["not pem"] == {
        "client_certificate": ["not a PEM certificate (no BEGIN CERTIFICATE block)"]
    }
    assert list(reasons["broken pem"]) == ["client_certificate"]
    assert reasons["someone else's key"] == {"client_key": ["the key does not belong to the certificate"]}
    assert reasons["expired"] == {"client_certificate": ["the certificate expired on 2020-02-01 00:00 UTC"]}
    assert reasons["encrypted key"] == {
        "client_key": ["the key is encrypted with a passphrase; give it unencrypted"]
    }
    assert list(reasons["no key"]) == ["client_key"]
    stored = Tenant.objects.get(pk=tenant.pk)
    assert stored.client_certificate == "" and stored.client_key == "" and not AuditLog.objects.exists()


def test_a_leaf_certificate_is_no_ca(tenant):
    cert, _ = client_pem()
    [reason] = refusal(lambda: ca_certificates_set(tenant=tenant, certificates=cert, **WHO))[
        "ca_certificates"
    ]
    assert reason.endswith("is not a CA certificate (basicConstraints CA)")
    assert Tenant.objects.get(pk=tenant.pk).ca_certificates == ""


def test_set_replace_and_remove_are_audited_without_the_key(tenant):
    ca = trustme.CA()
    first, first_key = client_pem(ca)
    second, second_key = client_pem(ca)
    client_certificate_set(tenant=tenant, certificate=first, key=first_key, **WHO)
    client_certificate_set(tenant=tenant, certificate=second, key=second_key, **WHO)
    ca_certificates_set(tenant=tenant, certificates=ca_pem(ca), **WHO)
    assert client_certificate_remove(tenant=tenant, **WHO) is True
    assert client_certificate_remove(tenant=tenant, **WHO) is False

    log = list(AuditLog.objects.order_by("id"))
    assert [row.action for row in log] == [
        "client_certificate.set",
        "client_certificate.set",
        "ca_certificates.set",
        "client_certificate.remove",
    ]
    assert log[1].before["client_certificate"]["sha256"] != log[1].after["client_certificate"]["sha256"]
    assert "PRIVATE KEY" not in str([(row.before, row.after) for row in log])
    state = tls_state(Tenant.objects.get(pk=tenant.pk))
    assert state["client_certificate"] is None and len(state["ca_certificates"]) == 1
    stored = Tenant.objects.get(pk=tenant.pk)
    assert stored.client_key == "" and stored.client_certificate_expires_at is None


def test_the_state_shows_expiry_and_says_when_it_is_soon(tenant):
    cert, key = client_pem(not_after=datetime.now(UTC) + timedelta(days=10))
    tenant = client_certificate_set(tenant=tenant, certificate=cert, key=key, **WHO)
    shown = tls_state(tenant)["client_certificate"]
    assert shown["expiring_soon"] is True and shown["subject"]
    assert datetime.fromisoformat(shown["expires_at"]) == tenant.client_certificate_expires_at
    assert "key" not in shown
