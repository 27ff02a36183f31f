"""A tenant's TLS material toward its receivers: client certificate and key, CA certificates.

Set by an operator (admin) or the tenant (API). The key is sealed at rest (callbacks.sealing) and
never returned: the audit log and every read show the certificate's subject, expiry and
fingerprint instead. Replacing or removing takes effect with the next attempt: workers re-read a
tenant within seconds, and a changed identity gets new connections, while attempts in flight
finish on the connections they started on.
"""

from django.db import transaction

from callbacks.domain.certificates import (
    certificate_summaries,
    clean_ca_certificates,
    clean_client_certificate,
    expiring_soon,
)
from callbacks.models import Tenant
from callbacks.services.audit import audit_record


def tls_state(tenant: Tenant) -> dict:
    """What may be shown of the tenant's TLS material, JSON-ready (never the key): the client
    certificate (its first, the tenant's own, certificate) and each CA certificate."""
    client = None
    if tenant.client_certificate:
        leaf = certificate_summaries(tenant.client_certificate)[0]
        client = {**_shown(leaf), "expiring_soon": expiring_soon(leaf["expires_at"])}
    cas = (
        [_shown(cert) for cert in certificate_summaries(tenant.ca_certificates)]
        if tenant.ca_certificates
        else []
    )
    return {"client_certificate": client, "ca_certificates": cas}


def _shown(summary: dict) -> dict:
    return {**summary, "expires_at": summary["expires_at"].isoformat()}


@transaction.atomic
def client_certificate_set(
    *, tenant: Tenant, certificate: str, key: str, actor_type: str, actor: str
) -> Tenant:
    """Store a client certificate and its key (checked: PEM, matching, not expired)."""
    cleaned = clean_client_certificate(certificate, key)
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    before = tls_state(tenant)
    tenant.client_certificate = cleaned.certificate
    tenant.client_key = cleaned.key
    tenant.client_certificate_expires_at = cleaned.expires_at
    tenant.save(update_fields=["client_certificate", "client_key", "client_certificate_expires_at"])
    _audit(tenant, "client_certificate.set", before, actor_type, actor)
    return tenant


@transaction.atomic
def client_certificate_remove(*, tenant: Tenant, actor_type: str, actor: str) -> bool:
    """Stop presenting a client certificate. False if there was none."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if not tenant.client_certificate:
        return False
    before = tls_state(tenant)
    tenant.client_certificate = ""
    tenant.client_key = ""
    tenant.client_certificate_expires_at = None
    tenant.save(update_fields=["client_certificate", "client_key", "client_certificate_expires_at"])
    _audit(tenant, "client_certificate.remove", before, actor_type, actor)
    return True


@transaction.atomic
def ca_certificates_set(*, tenant: Tenant, certificates: str, actor_type: str, actor: str) -> Tenant:
    """Trust these CA certificates for the tenant's receivers, beside the installation's ("" removes)."""
    cleaned = clean_ca_certificates(certificates)
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    before = tls_state(tenant)
    tenant.ca_certificates = cleaned
    tenant.save(update_fields=["ca_certificates"])
    _audit(tenant, "ca_certificates.set" if cleaned else "ca_certificates.remove", before, actor_type, actor)
    return tenant


def _audit(tenant: Tenant, action: str, before: dict, actor_type: str, actor: str) -> None:
    audit_record(
        actor_type=actor_type,
        actor=actor,
        tenant=tenant,
        action=action,
        obj=tenant,
        before=before,
        after=tls_state(tenant),
    )
