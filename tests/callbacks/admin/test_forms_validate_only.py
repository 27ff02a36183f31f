"""Admin forms validate without side effects: checking a form changes nothing, in the database or in the
process; only saving it writes, through the service."""

from django.conf import settings

from callbacks import conf
from callbacks.admin.protection import WhitelistEntryForm
from callbacks.admin.settings import RuntimeSettingForm
from callbacks.admin.tenants import TenantChangeForm
from callbacks.models import AuditLog, RuntimeSetting, UrlWhitelistEntry


def test_validating_the_runtime_settings_form_leaves_the_process_settings_alone(db):
    default = settings.CALLBACKS["DISPATCH_BATCH"]
    form = RuntimeSettingForm(data={"key": "DISPATCH_BATCH", "value": "7"})

    assert form.is_valid(), form.errors

    assert conf.get("DISPATCH_BATCH") == default
    assert not RuntimeSetting.objects.exists()
    assert not AuditLog.objects.exists()


def test_the_runtime_settings_form_refuses_out_of_bounds_values_without_writing(db):
    form = RuntimeSettingForm(data={"key": "DISPATCH_BATCH", "value": "5000"})

    assert not form.is_valid()
    assert "between 1 and 1000" in str(form.errors)
    assert conf.get("DISPATCH_BATCH") == settings.CALLBACKS["DISPATCH_BATCH"]


def test_validating_the_tenant_form_checks_cross_field_bounds_without_writing(tenant):
    form = TenantChangeForm(
        instance=tenant,
        data={"backoff_initial_seconds": "30", "backoff_max_seconds": "10", "enforce_whitelist": ""},
    )

    assert not form.is_valid()
    assert "must be at least backoff_initial_seconds" in str(form.errors["backoff_max_seconds"])
    tenant.refresh_from_db()
    assert tenant.backoff_initial_seconds is None
    assert not AuditLog.objects.exists()


def test_validating_the_whitelist_form_writes_nothing(tenant):
    form = WhitelistEntryForm(data={"tenant": tenant.pk, "host": "API.Example.com", "enabled": "on"})

    assert form.is_valid(), form.errors

    assert form.cleaned_data["host"] == "api.example.com"
    assert not UrlWhitelistEntry.objects.exists()
    assert not AuditLog.objects.exists()
