"""Tenants: created here with their API key and signing secret shown once; keys and secrets rotated by actions."""

import functools

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.template.response import TemplateResponse
from django.utils import timezone

from callbacks import keys
from callbacks.admin.common import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    actor,
    add_service_errors,
    adopt,
    report,
    run_each,
)
from callbacks.domain.certificates import clean_ca_certificates, clean_client_certificate
from callbacks.domain.policy import check_policy_order, clean_policy
from callbacks.domain.vocabulary import ActorType, SigningScheme
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
    api_key_revoke,
    api_key_rotate,
    signing_key_rotate,
    signing_scheme_set,
    signing_secret_rotate,
    tenant_create,
    tenant_deactivate,
    tenant_reactivate,
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
CONFIRM_TEMPLATE = "admin/callbacks/confirm_action.html"


class ApiKeyInline(ReadOnlyInline):
    model = TenantApiKey
    verbose_name_plural = "API keys (only their first characters are stored in clear)"
    ordering = ("-created_at",)
    fields = readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at", "manages_whitelist")


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
    # With a button making a sign-in link to the tenant's portal (served by portal.admin).
    change_form_template = "admin/callbacks/tenant/change_form.html"
    actions = (
        "rotate_api_key",
        "rotate_signing_secret",
        "rotate_signing_key",
        "sign_with_v1a",
        "sign_with_v1",
        "deactivate",
        "reactivate",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "name",
                    "created_at",
                    "signing_secret_state",
                    "signing_key_state",
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
    readonly_fields = (
        "id",
        "name",
        "is_active",
        "created_at",
        "signing_secret_state",
        "signing_key_state",
        "tls_state_shown",
    )

    def has_delete_permission(self, request, obj=None):
        # A tenant's tasks are history (PROTECT); deactivate it instead.
        return False

    @admin.display(description="signing secret (v1, HMAC)")
    def signing_secret_state(self, tenant):
        if not tenant.signing_secret:
            return "none (callbacks are not signed with v1)"
        state = f"{tenant.signing_secret[:10]}… (shown in full only when created or rotated)"
        return state + _rotation_state(tenant, SigningScheme.V1, "the previous secret")

    @admin.display(description="signing key (v1a, ed25519)")
    def signing_key_state(self, tenant):
        # The public key only: the private key never leaves the service.
        if not tenant.signing_private_key:
            return "none"
        previous = f"the previous key ({keys.public_key_of(tenant.previous_signing_private_key)})"
        state = f"public key {keys.public_key_of(tenant.signing_private_key)}"
        return state + _rotation_state(tenant, SigningScheme.V1A, previous)

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
        # Rotation replaces the key: the old ones stop working unless the operator keeps them for a
        # switch without downtime (then revoked by hand, on the API keys page).
        rotate = functools.partial(
            api_key_rotate,
            revoke_others=request.POST.get("keep_old") != "on",
            manages_whitelist=request.POST.get("manages_whitelist") == "on",
        )
        return self._rotate(request, queryset, "rotate_api_key", "API key", "api_key", rotate)

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

    @admin.action(
        description="Rotate ed25519 signing key (v1a; shows the new public key)…", permissions=["rotate"]
    )
    def rotate_signing_key(self, request, queryset):
        def rotate(**kwargs):
            return signing_key_rotate(scheme=SigningScheme.V1A, **kwargs)

        return self._rotate(request, queryset, "rotate_signing_key", "signing key", "public_key", rotate)

    @admin.action(description="Sign with ed25519 (v1a)", permissions=["rotate"])
    def sign_with_v1a(self, request, queryset):
        self._set_scheme(request, queryset, SigningScheme.V1A)

    @admin.action(description="Sign with HMAC (v1)", permissions=["rotate"])
    def sign_with_v1(self, request, queryset):
        self._set_scheme(request, queryset, SigningScheme.V1)

    def _set_scheme(self, request, queryset, scheme):
        run_each(
            self,
            request,
            queryset,
            f"Signing with {scheme}",
            lambda tenant: signing_scheme_set(
                tenant=tenant, scheme=scheme, actor_type=ActorType.USER, actor=actor(request)
            ),
        )

    def _rotate(self, request, queryset, action, what, key, rotate):
        tenants = list(queryset.order_by("name"))
        if request.POST.get("confirm") != "yes":
            return confirm_page(
                self,
                request,
                title=f"Rotate the {what}?",
                message="",
                objects=tenants,
                action=action,
                button="Yes, rotate",
                template="admin/callbacks/tenant/rotate_confirmation.html",
                what=what,
            )
        rows = [
            {"tenant": tenant, key: rotate(tenant=tenant, actor_type=ActorType.USER, actor=actor(request))}
            for tenant in tenants
        ]
        return self._secrets_page(request, f"New {what}", rows)

    # --- deactivation: a confirmation first (the tenant's keys stop working, its callbacks wait) -----

    def has_activity_permission(self, request):
        return request.user.has_perm("callbacks.change_tenant")

    @admin.action(description="Deactivate (keys stop working, callbacks are held)…", permissions=["activity"])
    def deactivate(self, request, queryset):
        return confirmed_action(
            self,
            request,
            list(queryset.filter(is_active=True).order_by("name")),
            lambda tenant: tenant_deactivate(tenant=tenant, actor_type=ActorType.USER, actor=actor(request)),
            title="Deactivate these tenants?",
            message="Their API keys answer 401 from the next request and their callbacks are held, "
            "not sent and not lost, until they are reactivated. Attempts in flight finish.",
            action="deactivate",
            button="Yes, deactivate",
            done="Deactivated",
        )

    @admin.action(description="Reactivate (keys work again, held callbacks go)", permissions=["activity"])
    def reactivate(self, request, queryset):
        tenants = list(queryset.filter(is_active=False).order_by("name"))
        for tenant in tenants:
            tenant_reactivate(tenant=tenant, actor_type=ActorType.USER, actor=actor(request))
        report(self, request, "Reactivated", len(tenants), [])


@admin.register(TenantApiKey)
class TenantApiKeyAdmin(ReadOnlyAdmin):
    """Keys are created with their tenant or by rotation (shown once); here they are found and revoked."""

    list_display = ("prefix", "tenant", "created_at", "last_used_at", "revoked_at", "manages_whitelist")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "manages_whitelist")
    list_select_related = ("tenant",)
    search_fields = ("prefix", "tenant__name")
    ordering = ("-created_at",)
    fields = ("prefix", "tenant", "created_at", "last_used_at", "revoked_at", "manages_whitelist")
    actions = ("revoke",)

    def has_revoke_permission(self, request):
        return request.user.has_perm("callbacks.change_tenant")

    @admin.action(description="Revoke (the key stops working at once)…", permissions=["revoke"])
    def revoke(self, request, queryset):
        return confirmed_action(
            self,
            request,
            list(queryset.filter(revoked_at__isnull=True).select_related("tenant").order_by("prefix")),
            lambda api_key: api_key_revoke(api_key=api_key, actor_type=ActorType.USER, actor=actor(request)),
            title="Revoke these API keys?",
            message="A client still using one of them gets 401 from its next request. "
            "A revoked key cannot be restored: give the tenant a new one by rotation.",
            action="revoke",
            button="Yes, revoke",
            done="Revoked",
        )


def confirmed_action(model_admin, request, objects, call, *, title, message, action, button, done):
    """Django's delete_selected habit: a page that asks first; on "yes", `call(obj)` for each object."""
    if request.POST.get("confirm") != "yes":
        return confirm_page(
            model_admin, request, title=title, message=message, objects=objects, action=action, button=button
        )
    for obj in objects:
        call(obj)
    report(model_admin, request, done, len(objects), [])
    return None


def confirm_page(
    model_admin, request, *, title, message, objects, action, button, template=CONFIRM_TEMPLATE, **extra
):
    """The page that asks before an action takes effect; "yes" posts the action again with confirm=yes."""
    context = {
        **extra,
        **model_admin.admin_site.each_context(request),
        "title": title,
        "message": message,
        "opts": model_admin.model._meta,
        "objects": objects,
        "action": action,
        "button": button,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, template, context)


def _rotation_state(tenant, scheme: str, previous: str) -> str:
    """Whether the scheme signs the tenant's callbacks now, and until when its previous key does too."""
    state = "; signs callbacks now" if tenant.signing_scheme == scheme else ""
    if keys.previous_signs(tenant, scheme, timezone.now()):
        until = getattr(tenant, keys.SCHEME_FIELDS[scheme].previous_until)
        state += f"; {previous} still signs too, until {until:%Y-%m-%d %H:%M} UTC"
    return state
