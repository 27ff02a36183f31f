"""The portal's one table: the sign-in links operators give to tenants."""

from django.db import models
from django.utils import timezone

from callbacks.models import Tenant


class PortalLink(models.Model):
    """A sign-in link to one tenant's portal, stored as a SHA-256 digest of its secret: the secret is
    long and random, so a slow hash adds nothing, and the digest finds the row with one indexed lookup.
    A link works, as often as it is opened, until it expires or is revoked; every portal request checks
    it again, so revoking it ends the sessions it opened."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="portal_links")
    digest = models.CharField(max_length=64, unique=True)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=200, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "portal sign-in link"
        indexes = [models.Index(fields=["tenant", "-created_at"], name="portallink_tenant_idx")]

    def __str__(self):
        return f"link {self.pk} ({self.tenant})"

    def is_valid(self, now=None) -> bool:
        """Neither revoked nor expired, and its tenant active."""
        now = now or timezone.now()
        return self.revoked_at is None and self.expires_at > now and self.tenant.is_active

    @property
    def actor(self) -> str:
        """How audit rows name what a tenant did through this link."""
        return f"portal link {self.pk}"
