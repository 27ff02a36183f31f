"""Tenants: created here with their API key and signing secret shown once; keys and secrets rotated by actions."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.template.response import TemplateResponse

from callbacks.admin.common import ReadOnlyInline, actor, add_service_errors, adopt
from callbacks.domain.certificates import clean_ca_certificates, clean_client_certificate
from callbacks.domain.policy import check_policy_order, clean_policy
from callbacks.domain.vocabulary import ActorType
from callbacks.errors import ApplicationError
from callbacks.models import Tenant, TenantApiKey
from callbacks.services.audit import audit_record
from callbacks.services.certificates import (
    ca_certificates_set,
    client_certificate_remove,
    client_certificate_set,
    tls_state,
)
from callbacks.services.tenants import (
    api_key_rotate,
    signing_secret_rotate,
    tenant_create,
    tenant_update_policy,
)

POLICY_FIELDS = (
    "max_retries",
    "backoff_initial_seconds",
    "backoff_multiplier",
    "backoff_max_seconds",
    "connect_timeout_seconds",
    "total_timeout_seconds",
    "success_statuses",
    "max_concurrency_per_origin",
    "rate_limit_per_origin",
    "breaker_failure_threshold",
    "breaker_open_seconds",
    "api_rate_limit",
)
EDITABLE_FIELDS = ("enforce_whitelist", "notification_url", *POLICY_FIELDS)
SECRETS_TEMPLATE = "admin/callbacks/tenant/secrets.html"


class ApiKeyInline(ReadOnlyInline):
    model = TenantApiKey
    verbose_name_plural = "API keys (only their first characters are stored in clear)"
    ordering = ("-created_at",)
    fields = readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")


class WriteOnlyTextarea(forms.Textarea):
    """Never renders a value: a key sent with a form refused for another field is not echoed back."""

    def format_value(self, value):
        return None


class TenantChangeForm(forms.ModelForm):
    notification_url = forms.URLField(required=False, max_length=2000, assume_scheme="https")
    # TLS toward receivers. The key is write-only: the form never shows a stored one.
    new_client_certificate = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="PEM certificate (then any intermediates) to present to receivers; replaces the current one",
    )
    new_client_key = forms.CharField(
        required=False,
        strip=False,
        widget=WriteOnlyTextarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text="its PEM private key, unencrypted; stored encrypted and never shown again",
    )
    remove_client_certificate = forms.BooleanField(required=False, help_text="stop presenting a certificate")
    ca_certificates_pem = forms.CharField(
        required=False,
        strip=False,
        label="CA certificates",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="PEM CA certificates trusted for this tenant's receivers, beside the installation's",
    )

    class Meta:
        model = Tenant
        fields = EDITABLE_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ca_certificates_pem"].initial = self.instance.ca_certificates

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        # The checks tenant_update_policy makes, on the tenant as it would be after the change.
        try:
            changes = clean_policy(self._changes())
            check_policy_order({**{name: getattr(self.instance, name) for name in POLICY_FIELDS}, **changes})
        except ApplicationError as exc:
            add_service_errors(self, exc)
        self._clean_tls(cleaned)
        return cleaned

    def _clean_tls(self, cleaned) -> None:
        # The checks the certificate services make, so a bad certificate is an error on its field.
        fields = {"client_certificate": "new_client_certificate", "client_key": "new_client_key"}
        if cleaned.get("new_client_certificate") or cleaned.get("new_client_key"):
            try:
                clean_client_certificate(cleaned.get("new_client_certificate"), cleaned.get("new_client_key"))
            except ApplicationError as exc:
                for field, reasons in exc.fields.items():
                    self.add_error(fields[field], reasons)
        if "ca_certificates_pem" in self.changed_data:
            try:
                clean_ca_certificates(cleaned.get("ca_certificates_pem"))
            except ApplicationError as exc:
                self.add_error("ca_certificates_pem", exc.fields["ca_certificates"])

    def save_tls_through_services(self, tenant: Tenant, who: str) -> Tenant:
        data = self.cleaned_data
        if data.get("new_client_certificate"):
            tenant = client_certificate_set(
                tenant=tenant,
                certificate=data["new_client_certificate"],
                key=data["new_client_key"],
                actor_type=ActorType.USER,
                actor=who,
            )
        elif data.get("remove_client_certificate"):
            client_certificate_remove(tenant=tenant, actor_type=ActorType.USER, actor=who)
        if "ca_certificates_pem" in self.changed_data:
            tenant = ca_certificates_set(
                tenant=tenant, certificates=data["ca_certificates_pem"], actor_type=ActorType.USER, actor=who
            )
        return Tenant.objects.get(pk=tenant.pk)

    def _changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.changed_data if name in EDITABLE_FIELDS}

    def save_through_service(self, who: str) -> Tenant:
        changes = self._changes()
        return tenant_update_policy(tenant=self.instance, data=changes, actor_type=ActorType.USER, actor=who)


class TenantCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="unique, e.g. the calling system's name")
    enforce_whitelist = forms.BooleanField(required=False, help_text="refuse URLs outside its whitelist")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Tenant.objects.filter(name=name).exists():
            raise forms.ValidationError(f"A tenant named {name!r} exists already.")
        return name


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active", "enforce_whitelist", "max_retries", "created_at")
    list_filter = ("is_active", "enforce_whitelist")
    search_fields = ("name",)
    ordering = ("name",)
    form = TenantChangeForm
    inlines = (ApiKeyInline,)
    actions = ("rotate_api_key", "rotate_signing_secret")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "name",
                    "created_at",
                    "signing_secret_state",
                    "is_active",
                    "enforce_whitelist",
                    "notification_url",
                )
            },
        ),
        ("Delivery policy (empty: the installation's default)", {"fields": POLICY_FIELDS[:7]}),
        ("Target protection and API limits", {"fields": POLICY_FIELDS[7:]}),
        (
            "TLS toward receivers",
            {
                "fields": (
                    "tls_state_shown",
                    "new_client_certificate",
                    "new_client_key",
                    "remove_client_certificate",
                    "ca_certificates_pem",
                )
            },
        ),
    )
    readonly_fields = ("id", "name", "is_active", "created_at", "signing_secret_state", "tls_state_shown")

    def has_delete_permission(self, request, obj=None):
        # A tenant's tasks are history (PROTECT); deactivate it instead.
        return False

    @admin.display(description="signing secret")
    def signing_secret_state(self, tenant):
        if not tenant.signing_secret:
            return "none (callbacks are not signed)"
        state = f"{tenant.signing_secret[:10]}… (shown in full only when created or rotated)"
        if tenant.previous_signing_secret:
            state += "; the previous secret still signs too (rotation in progress)"
        return state

    @admin.display(description="client certificate")
    def tls_state_shown(self, tenant):
        state = tls_state(tenant)["client_certificate"]
        if state is None:
            return "none (receivers that ask for one refuse this tenant's callbacks)"
        shown = f"{state['subject']}, issued by {state['issuer']}; expires {state['expires_at']}"
        if state["expiring_soon"]:
            shown += " (EXPIRES WITHIN 14 DAYS: set a new one)"
        return shown + f"; sha256 {state['sha256'][:16]}…; key stored encrypted, never shown"

    # --- create: a form of our own, so the key and secret are shown once and never stored in clear --

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = TenantCreateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                new = tenant_create(**form.cleaned_data)
            except (IntegrityError, ValidationError):
                form.add_error("name", "A tenant with this name exists already.")
            else:
                audit_record(
                    actor_type=ActorType.USER,
                    actor=actor(request),
                    tenant=new.tenant,
                    action="tenant.create",
                    obj=new.tenant,
                    before=None,
                    after={"name": new.tenant.name, "enforce_whitelist": new.tenant.enforce_whitelist},
                )
                self.log_addition(request, new.tenant, [{"added": {}}])
                return self._secrets_page(
                    request,
                    "Tenant created",
                    [{"tenant": new.tenant, "api_key": new.api_key, "signing_secret": new.signing_secret}],
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Add tenant",
            "opts": self.model._meta,
            "form": form,
        }
        return TemplateResponse(request, "admin/callbacks/tenant/add.html", context)

    def _secrets_page(self, request, title, rows):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "rows": rows,
        }
        response = TemplateResponse(request, SECRETS_TEMPLATE, context)
        response["Cache-Control"] = "no-store"
        return response

    # --- change: the policy fields, through tenant_update_policy (its checks show as form errors) ---

    def save_model(self, request, obj, form, change):
        if not change:  # add_view above creates tenants; this path is not reached
            return super().save_model(request, obj, form, change)
        who = actor(request)
        adopt(obj, form.save_tls_through_services(form.save_through_service(who), who))
        return None

    # --- rotation: a confirmation first (a rotated key breaks a client still using the old one) ----

    def has_rotate_permission(self, request):
        return request.user.has_perm("callbacks.change_tenant")

    @admin.action(description="Rotate API key (shows the new key once)…", permissions=["rotate"])
    def rotate_api_key(self, request, queryset):
        return self._rotate(request, queryset, "rotate_api_key", "API key", "api_key", api_key_rotate)

    @admin.action(description="Rotate signing secret (shows the new secret once)…", permissions=["rotate"])
    def rotate_signing_secret(self, request, queryset):
        return self._rotate(
            request,
            queryset,
            "rotate_signing_secret",
            "signing secret",
            "signing_secret",
            signing_secret_rotate,
        )

    def _rotate(self, request, queryset, action, what, key, rotate):
        tenants = list(queryset.order_by("name"))
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": f"Rotate the {what}?",
                "opts": self.model._meta,
                "tenants": tenants,
                "what": what,
                "action": action,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/callbacks/tenant/rotate_confirmation.html", context)
        rows = [
            {"tenant": tenant, key: rotate(tenant=tenant, actor_type=ActorType.USER, actor=actor(request))}
            for tenant in tenants
        ]
        return self._secrets_page(request, f"New {what}", rows)
