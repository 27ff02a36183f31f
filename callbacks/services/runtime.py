"""Run-time settings: operators change delivery settings without a restart."""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from callbacks import conf
from callbacks.domain.policy import clean_runtime_changes
from callbacks.models import RuntimeSetting
from callbacks.services.audit import audit_record


def runtime_settings_update(*, changes: dict, actor_type: str, actor: str) -> dict:
    """Set (value) or clear (None) run-time overrides, all or nothing; returns the effective values."""
    cleaned = clean_runtime_changes(changes)
    now = timezone.now()
    with transaction.atomic():
        before = dict(RuntimeSetting.objects.filter(key__in=cleaned).values_list("key", "value"))
        for key, value in cleaned.items():
            if value is None:
                RuntimeSetting.objects.filter(key=key).delete()
            else:
                RuntimeSetting.objects.update_or_create(key=key, defaults={"value": value, "updated_at": now})
        audit_record(
            actor_type=actor_type,
            actor=actor,
            tenant=None,
            action="settings.update",
            # One audit row for the change as a whole, named by the keys it touched.
            obj=RuntimeSetting(key=", ".join(sorted(cleaned))),
            before=before,
            after={key: value for key, value in cleaned.items()},
        )
    conf.refresh()
    return runtime_settings_effective()


def runtime_settings_effective() -> dict:
    """Every run-time key: its value in force, the configured default, and whether overridden."""
    overrides = dict(RuntimeSetting.objects.values_list("key", "value"))
    return {
        key: {
            "value": conf.get(key),
            "default": settings.CALLBACKS.get(key),
            "overridden": key in overrides,
            "help": spec.help,
            "minimum": spec.minimum,
            "maximum": spec.maximum,
        }
        for key, spec in conf.RUNTIME_KEYS.items()
        if key in settings.CALLBACKS  # a key whose feature this installation lacks is not shown
    }
