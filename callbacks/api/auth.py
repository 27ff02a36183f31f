"""Bearer API-key authentication: `Authorization: Bearer tc_...` identifies a tenant; HTTP Basic for
operators. Both count their failures per client address (throttling.AuthFailureGuard)."""

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from callbacks import selectors
from callbacks.api.throttling import AuthFailureGuard

GUARD = AuthFailureGuard()


class TenantPrincipal:
    """request.user for API calls: the tenant behind the key."""

    is_authenticated = True
    is_anonymous = False
    # Never an operator: Django's permission checks (IsAdminUser, has_perm) answer 403 to a tenant's key.
    is_staff = False
    is_superuser = False

    def __init__(self, tenant, api_key):
        self.tenant = tenant
        self.api_key = api_key

    def has_perm(self, perm, obj=None) -> bool:
        return False

    def __str__(self):
        return f"tenant:{self.tenant.name} key:{self.api_key.prefix}"


class TenantApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <API key>'.")
        GUARD.check(request)
        api_key = selectors.api_key_lookup(key=key.strip())
        if api_key is None:
            GUARD.record(request)
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        now = timezone.now()
        # Touch last_used_at at most once a minute: a write per request would cost more than auth.
        if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
            type(api_key).objects.filter(pk=api_key.pk).update(last_used_at=now)
        return TenantPrincipal(api_key.tenant, api_key), api_key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ThrottledBasicAuthentication(authentication.BasicAuthentication):
    """DRF's HTTP Basic, with wrong user names and passwords counted per client address."""

    def authenticate_credentials(self, userid, password, request=None):
        GUARD.check(request)
        try:
            return super().authenticate_credentials(userid, password, request)
        except exceptions.AuthenticationFailed:
            GUARD.record(request)
            raise


class IsTenant(permissions.BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.user, TenantPrincipal)
