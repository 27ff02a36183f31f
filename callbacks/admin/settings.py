"""The audit log (read-only) and run-time settings (saved through services.runtime)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse

from callbacks import conf
from callbacks.admin.common import ReadOnlyAdmin, actor, add_service_errors, pretty_json
from callbacks.admin.filters import ActorTypeFilter, AuditActionFilter, TenantFilter
from callbacks.domain.policy import clean_runtime_changes
from callbacks.domain.vocabulary import ActorType
from callbacks.errors import ApplicationError
from callbacks.models import AuditLog, RuntimeSetting
from callbacks.services.runtime import runtime_settings_in_force, runtime_settings_update


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor_type", "actor", "tenant", "action", "object_type", "object_id")
    list_filter = (AuditActionFilter, ActorTypeFilter, TenantFilter)
    list_select_related = ("tenant",)
    search_fields = ("=object_id", "=actor")
    search_help_text = "An exact object id or actor."
    ordering = ("-at",)
    fields = (
        "at",
        "actor_type",
        "actor",
        "tenant",
        "action",
        "object_type",
        "object_id",
        "before_shown",
        "after_shown",
    )
    readonly_fields = ("before_shown", "after_shown")

    @admin.display(description="before")
    def before_shown(self, entry):
        return pretty_json(entry.before)

    @admin.display(description="after")
    def after_shown(self, entry):
        return pretty_json(entry.after)


def _runtime_keys() -> list[tuple[str, str]]:
    return [(key, f"{key}: {spec.help}") for key, spec in sorted(conf.RUNTIME_KEYS.items())]


class RuntimeSettingForm(forms.ModelForm):
    key = forms.ChoiceField(choices=_runtime_keys)

    class Meta:
        model = RuntimeSetting
        fields = ("key", "value")
        help_texts = {"value": "a JSON number, e.g. 20 or 2.5"}

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        key = cleaned.get("key") or self.instance.key
        try:
            cleaned["value"] = clean_runtime_changes({key: cleaned["value"]})[key]
        except ApplicationError as exc:
            add_service_errors(self, exc)
        return cleaned

    def save_through_service(self, who: str):
        key = self.cleaned_data.get("key") or self.instance.key
        runtime_settings_update(
            changes={key: self.cleaned_data["value"]}, actor_type=ActorType.USER, actor=who
        )
        return RuntimeSetting.objects.get(key=key)


@admin.register(RuntimeSetting)
class RuntimeSettingAdmin(admin.ModelAdmin):
    """Overrides of settings.CALLBACKS that every process picks up within seconds, no restart. The list
    is every run-time key with its value in force and where it comes from, set or reset in place."""

    form = RuntimeSettingForm
    list_display = ("key", "value", "updated_at")
    ordering = ("key",)
    change_list_template = "admin/callbacks/runtimesetting/in_force.html"

    def get_readonly_fields(self, request, obj=None):
        return ("key", "updated_at") if obj is not None else ("updated_at",)

    def save_model(self, request, obj, form, change):
        saved = form.save_through_service(actor(request))
        obj.key, obj.value, obj.updated_at = saved.key, saved.value, saved.updated_at
        obj._state.adding = False

    def delete_model(self, request, obj):
        runtime_settings_update(changes={obj.key: None}, actor_type=ActorType.USER, actor=actor(request))

    def delete_queryset(self, request, queryset):
        changes = {key: None for key in queryset.values_list("key", flat=True)}
        runtime_settings_update(changes=changes, actor_type=ActorType.USER, actor=actor(request))

    def changelist_view(self, request, extra_context=None):
        """Every key, not only the overridden ones (a list of rows would say "0 runtime settings")."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        errors, submitted = {}, {}
        if request.method == "POST":
            key, operation = request.POST.get("key", ""), request.POST.get("operation")
            value = None if operation == "reset" else request.POST.get("value", "").strip()
            if not self._may(request, operation):
                raise PermissionDenied
            try:
                runtime_settings_update(changes={key: value}, actor_type=ActorType.USER, actor=actor(request))
            except ApplicationError as exc:
                errors = {name: "; ".join(_texts(problems)) for name, problems in exc.fields.items()}
                submitted = {key: value}
            else:
                done = (
                    f"{key} reset: the configured value applies" if value is None else f"{key} set to {value}"
                )
                self.message_user(request, f"{done} (every process within seconds).", messages.SUCCESS)
                return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "title": "Run-time settings",
            "subtitle": None,
            "opts": self.model._meta,
            "rows": [
                (row, errors.get(row.key), submitted.get(row.key, "")) for row in runtime_settings_in_force()
            ],
            "may_set": self._may(request, "set"),
            "may_reset": self._may(request, "reset"),
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.change_list_template, context, status=400 if errors else 200)

    def _may(self, request, operation) -> bool:
        if operation == "reset":
            return self.has_delete_permission(request)
        if operation == "set":
            return self.has_add_permission(request) and self.has_change_permission(request)
        return False


def _texts(problems) -> list[str]:
    return [str(problem) for problem in problems] if isinstance(problems, list | tuple) else [str(problems)]
