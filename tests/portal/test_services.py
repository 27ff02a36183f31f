"""Making, revoking and using links: audit rows, never the token, refusals stored nowhere."""

import pytest

from callbacks.domain.vocabulary import ActorType
from callbacks.errors import ApplicationError
from callbacks.models import AuditLog
from callbacks.services.tenants import tenant_deactivate
from portal.models import PortalLink
from portal.services import portal_link_create, portal_link_revoke


def test_create_stores_the_digest_only_and_audits(tenant):
    link, token = portal_link_create(tenant=tenant, hours=2, actor="alice")
    assert link.digest != token and token.split(".")[0] not in link.digest
    assert round((link.expires_at - link.created_at).total_seconds()) == 7200
    row = AuditLog.objects.get(action="portal_link.create")
    assert (row.actor_type, row.actor, row.tenant, row.object_type) == (
        ActorType.USER,
        "alice",
        tenant,
        "portallink",
    )
    assert token not in str(row.after) and link.digest not in str(row.after)


def test_create_refuses_a_deactivated_tenant_and_stores_nothing(tenant):
    tenant_deactivate(tenant=tenant, actor_type=ActorType.USER, actor="ops")
    with pytest.raises(ApplicationError, match="deactivated"):
        portal_link_create(tenant=tenant, actor="alice")
    with pytest.raises(ApplicationError):
        portal_link_create(tenant=tenant, hours=1000, actor="alice")
    assert not PortalLink.objects.exists()
    assert not AuditLog.objects.filter(action="portal_link.create").exists()


def test_revoke_once_and_audited(tenant):
    link, _ = portal_link_create(tenant=tenant, actor="alice")
    revoked = portal_link_revoke(link=link, actor="bob")
    assert revoked.revoked_at is not None and revoked.revoked_by == "bob"
    again = portal_link_revoke(link=link, actor="carol")
    assert again.revoked_by == "bob"
    assert AuditLog.objects.filter(action="portal_link.revoke").count() == 1
