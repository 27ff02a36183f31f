"""The audit log: one row per change of state made by a tenant, an operator or the system."""

from django.db import models

from callbacks.masking import mask_data
from callbacks.models import AuditLog, Tenant


def audit_record(
    *,
    actor_type: str,
    actor: str,
    tenant: Tenant | None,
    action: str,
    obj: models.Model,
    before: dict | None,
    after: dict | None,
) -> AuditLog:
    return AuditLog.objects.create(
        actor_type=actor_type,
        actor=actor[:200],
        tenant=tenant,
        action=action,
        object_type=obj._meta.model_name,
        object_id=str(obj.pk),
        # Never a secret in the log (a schedule's task template carries headers, a URL a token).
        before=mask_data(before),
        after=mask_data(after),
    )
