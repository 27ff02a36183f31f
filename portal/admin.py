"""Sign-in links in the admin: listed with their state and revoked by an action; made from the tenant's
page (a button that posts to `issue`), which shows the link once."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from callbacks.admin.common import ReadOnlyAdmin, actor
from callbacks.admin.tenants import confirmed_action
from callbacks.domain.vocabulary import ActorType
from callbacks.errors import ApplicationError
from portal.models import PortalLink
from portal.selectors import tenant_by_id
from portal.services import portal_link_create, portal_link_revoke

ISSUED_TEMPLATE = "admin/portal/portallink/issued.html"


@admin.register(PortalLink)
class PortalLinkAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "tenant",
        "state",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "tenant")
    list_select_related = ("tenant",)
    search_fields = ("tenant__name", "created_by")
    ordering = ("-created_at",)
    fields = (
        "id",
        "tenant",
        "state",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
    )
    readonly_fields = ("state",)
    actions = ("revoke",)

    @admin.display(description="state")
    def state(self, link):
        if link.revoked_at is not None:
            return "revoked"
        if link.expires_at <= timezone.now():
            return "expired"
        return "works" if link.tenant.is_active else "tenant deactivated"

    def has_revoke_permission(self, request):
        return request.user.has_perm("portal.change_portallink")

    @admin.action(
        description="Revoke (the link and the sessions it opened end at once)…", permissions=["revoke"]
    )
    def revoke(self, request, queryset):
        return confirmed_action(
            self,
            request,
            list(queryset.filter(revoked_at__isnull=True).select_related("tenant").order_by("-created_at")),
            lambda link: portal_link_revoke(link=link, actor_type=ActorType.USER, actor=actor(request)),
            title="Revoke these sign-in links?",
            message="Whoever opened the portal with one of them is signed out at their next click, "
            "and the link no longer opens it. A revoked link cannot be restored: make a new one.",
            action="revoke",
            button="Yes, revoke",
            done="Revoked",
        )

    # --- issue: the tenant page's button posts here; the link is shown once, never stored ----------

    def get_urls(self):
        view = self.admin_site.admin_view(require_POST(self.issue_view))
        return [path("issue/<str:tenant_id>/", view, name="portal_portallink_issue"), *super().get_urls()]

    def issue_view(self, request, tenant_id):
        if not request.user.has_perm("portal.add_portallink"):
            raise PermissionDenied
        tenant = tenant_by_id(tenant_id=tenant_id)
        if tenant is None:
            raise Http404("No such tenant.")
        tenant_page = reverse("admin:callbacks_tenant_change", args=[tenant.pk])
        try:
            link, token = portal_link_create(
                tenant=tenant,
                hours=request.POST.get("hours"),
                actor_type=ActorType.USER,
                actor=actor(request),
            )
        except ApplicationError as exc:
            reasons = [reason for reasons in exc.fields.values() for reason in reasons]
            self.message_user(request, " ".join([exc.message, *reasons]), messages.ERROR)
            return HttpResponseRedirect(tenant_page)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Sign-in link for {tenant.name}",
            "opts": self.model._meta,
            "tenant": tenant,
            "link": link,
            "url": request.build_absolute_uri(reverse("portal:signin", args=[token])),
            "tenant_page": tenant_page,
        }
        response = TemplateResponse(request, ISSUED_TEMPLATE, context)
        response["Cache-Control"] = "no-store"
        return response
