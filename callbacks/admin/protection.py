"""Target protection: URL whitelists (with a "would this URL be allowed?" page), circuit breakers and the
URLs gone (410) for their tenant."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from callbacks.admin.common import ReadOnlyAdmin, actor, add_service_errors, adopt, run_each
from callbacks.admin.filters import TenantFilter
from callbacks.delivery.preflight import url_verdict
from callbacks.domain.vocabulary import ActorType
from callbacks.domain.whitelist import validate_pattern
from callbacks.errors import ApplicationError
from callbacks.models import CircuitBreaker, GoneUrl, Tenant, UrlWhitelistEntry
from callbacks.services.breakers import breaker_concurrency, breaker_reset
from callbacks.services.gone import gone_url_clear
from callbacks.services.whitelist import (
    whitelist_duplicate_check,
    whitelist_entry_create,
    whitelist_entry_delete,
    whitelist_entry_update,
)
from monitoring.origins import origin_page_url

PATTERN_FIELDS = ("host", "scheme", "port", "path_prefix")


class WhitelistEntryForm(forms.ModelForm):
    scheme = forms.ChoiceField(
        choices=[("", "http and https"), ("http", "http"), ("https", "https")], required=False
    )
    # The pattern is checked by callbacks.domain.whitelist, not by the field: it gives the readable reasons.
    port = forms.CharField(
        required=False, help_text="empty: the scheme's default port (80 or 443), not any port"
    )

    class Meta:
        model = UrlWhitelistEntry
        fields = ("tenant", "host", "scheme", "port", "path_prefix", "enabled", "note")

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        data = {name: cleaned.get(name) for name in PATTERN_FIELDS}
        tenant = cleaned.get("tenant") or self.instance.tenant
        try:
            pattern = validate_pattern(
                data["host"], data["scheme"] or "", data["port"] or None, data["path_prefix"] or ""
            )
            whitelist_duplicate_check(tenant=tenant, pattern=pattern, exclude=self.instance.pk)
        except ApplicationError as exc:
            add_service_errors(self, exc)
            return cleaned
        cleaned.update(
            host=pattern.host, scheme=pattern.scheme, port=pattern.port, path_prefix=pattern.path_prefix
        )
        return cleaned

    def _save_through_service(self, who: str):
        data = {name: self.cleaned_data.get(name) for name in (*PATTERN_FIELDS, "enabled", "note")}
        data["note"] = data["note"] or ""
        if self.instance.pk is None:
            return whitelist_entry_create(
                tenant=self.cleaned_data["tenant"], **data, actor_type=ActorType.USER, actor=who
            )
        return whitelist_entry_update(entry=self.instance, data=data, actor_type=ActorType.USER, actor=who)


class CheckUrlForm(forms.Form):
    tenant = forms.ModelChoiceField(Tenant.objects.order_by("name"))
    # Longer than any URL accepted: the URL rules' own check says what is wrong with a long one.
    url = forms.CharField(label="URL", max_length=10_000, widget=forms.TextInput(attrs={"size": 80}))


@admin.register(UrlWhitelistEntry)
class UrlWhitelistEntryAdmin(admin.ModelAdmin):
    form = WhitelistEntryForm
    list_display = (
        "__str__",
        "tenant",
        "host",
        "scheme",
        "port",
        "path_prefix",
        "enabled",
        "note",
        "created_at",
    )
    list_filter = (TenantFilter, "enabled")
    list_select_related = ("tenant",)
    search_fields = ("host",)
    ordering = ("tenant__name", "host")
    change_list_template = "admin/callbacks/urlwhitelistentry/change_list.html"

    def get_readonly_fields(self, request, obj=None):
        return ("tenant",) if obj is not None else ()

    def save_model(self, request, obj, form, change):
        adopt(obj, form._save_through_service(actor(request)))

    def delete_model(self, request, obj):
        whitelist_entry_delete(entry=obj, actor_type=ActorType.USER, actor=actor(request))

    def delete_queryset(self, request, queryset):
        for entry in queryset:
            self.delete_model(request, entry)

    def get_urls(self):
        view = self.admin_site.admin_view(self.check_view)
        return [path("check/", view, name="callbacks_urlwhitelistentry_check"), *super().get_urls()]

    def check_view(self, request):
        """Would a callback of this tenant to this URL go out? Each check delivery makes, and the verdict."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = CheckUrlForm(request.GET or None)
        context = {
            **self.admin_site.each_context(request),
            "title": "Would this URL be allowed?",
            "opts": self.model._meta,
            "form": form,
        }
        if form.is_valid():
            tenant, url = form.cleaned_data["tenant"], form.cleaned_data["url"].strip()
            context.update(checked=True, tenant=tenant, result=url_verdict(tenant=tenant, url=url))
        return TemplateResponse(request, "admin/callbacks/urlwhitelistentry/check.html", context)


@admin.register(CircuitBreaker)
class CircuitBreakerAdmin(ReadOnlyAdmin):
    list_display = (
        "origin",
        "state",
        "consecutive_failures",
        "open_count",
        "opened_at",
        "next_probe_at",
        "effective_concurrency_limit",
        "updated_at",
        "origin_page",
    )
    readonly_fields = ("origin_page",)
    list_filter = ("state",)
    search_fields = ("origin",)
    ordering = ("origin",)
    actions = ("reset",)

    def has_reset_permission(self, request):
        return request.user.has_perm("callbacks.change_circuitbreaker")

    @admin.display(description="concurrency now")
    def effective_concurrency_limit(self, breaker):
        """The configured limit, or what is left of it while the origin is slowed down (429, 503)."""
        limit = breaker_concurrency(breaker)
        return f"{limit} (slowed down)" if breaker.concurrency_limit is not None else limit

    @admin.display(description="origin page")
    def origin_page(self, breaker):
        """Limits, in-flight work, latest attempts and charts of the breaker's origin."""
        return format_html('<a href="{}">limits, in flight, attempts</a>', origin_page_url(breaker.origin))

    @admin.action(description="Reset (close the breaker)", permissions=["reset"])
    def reset(self, request, queryset):
        run_each(
            self,
            request,
            queryset,
            "Reset",
            lambda breaker: breaker_reset(breaker=breaker, actor_type=ActorType.USER, actor=actor(request)),
        )


@admin.register(GoneUrl)
class GoneUrlAdmin(ReadOnlyAdmin):
    """URLs whose receiver answered 410 Gone: the tenant's callbacks to them end `gone` unsent until cleared."""

    list_display = ("url", "tenant", "marked_at", "task_id")
    list_filter = (TenantFilter,)
    search_fields = ("url",)
    ordering = ("-marked_at",)
    list_select_related = ("tenant",)
    actions = ("clear",)

    def has_clear_permission(self, request):
        return request.user.has_perm("callbacks.delete_goneurl")

    @admin.action(description="Clear (deliver to these URLs again)", permissions=["clear"])
    def clear(self, request, queryset):
        run_each(
            self,
            request,
            queryset.select_related("tenant"),
            "Cleared",
            lambda gone: gone_url_clear(gone=gone, actor_type=ActorType.USER, actor=actor(request)),
        )
