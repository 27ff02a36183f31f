"""Run-time settings: operators change delivery settings without a restart."""

import os
from dataclasses import dataclass
from datetime import datetime

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


@dataclass(frozen=True)
class SettingInForce:
    """One run-time key as an operator needs it: what applies now and where that comes from."""

    key: str
    help: str
    value: object  # in force now
    source: str  # "runtime override", "environment" or "default"
    configured: object  # what applies without an override (the environment's or the default)
    configured_source: str  # "environment" or "default"
    environment_variable: str
    bounds: str
    overridden_at: datetime | None


def runtime_settings_in_force() -> list[SettingInForce]:
    """Every run-time key, sorted, read from the database now (not this process's cache), with its
    source: a run-time override, the environment variable CALLBACKS_<key>, or the built-in default."""
    overrides = {row.key: row for row in RuntimeSetting.objects.all()}
    rows = []
    for key, spec in sorted(conf.RUNTIME_KEYS.items()):
        if key not in settings.CALLBACKS:
            continue  # a key whose feature this installation lacks
        variable = f"CALLBACKS_{key}"
        configured_source = "environment" if variable in os.environ else "default"
        override = overrides.get(key)
        value, in_range = (override.value, True) if override else (None, False)
        if override is not None:
            try:
                value = spec.clean(override.value)
            except ValueError:
                in_range = False  # ignored by every process (conf.refresh): the configured value applies
        rows.append(
            SettingInForce(
                key=key,
                help=spec.help,
                value=value if in_range else settings.CALLBACKS[key],
                source="runtime override" if in_range else configured_source,
                configured=settings.CALLBACKS[key],
                configured_source=configured_source,
                environment_variable=variable,
                bounds=_bounds(spec),
                overridden_at=override.updated_at if override else None,
            )
        )
    return rows


def _bounds(spec) -> str:
    """ "0 to 1000000" rather than the "1e+06" of a general number format."""
    shown = [
        "no limit" if bound is None else str(int(bound)) if float(bound).is_integer() else f"{bound}"
        for bound in (spec.minimum, spec.maximum)
    ]
    return f"{shown[0]} to {shown[1]}"
