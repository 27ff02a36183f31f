"""Reads. Queries that views, admin, commands and the engine share (HackSoft's selectors)."""

from callbacks import keys
from callbacks.models import TenantApiKey


def api_key_lookup(*, key: str) -> TenantApiKey | None:
    """The active key with this value, with its tenant, or None."""
    if not key.startswith(keys.API_KEY_PREFIX):
        return None
    return (
        TenantApiKey.objects.select_related("tenant")
        .filter(digest=keys.api_key_digest(key), revoked_at__isnull=True, tenant__is_active=True)
        .first()
    )
