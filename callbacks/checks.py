"""System checks that warn about unsafe settings (numbered, like healthchecks')."""

from django.conf import settings
from django.core.checks import Warning, register


@register()
def check_ssrf_guard(app_configs, **kwargs):
    if settings.CALLBACKS["ALLOW_PRIVATE_NETWORKS"]:
        return [
            Warning(
                "CALLBACKS_ALLOW_PRIVATE_NETWORKS is on: callbacks may reach loopback, private and "
                "cloud-metadata addresses (SSRF).",
                hint="Use it for demos and tests only; list internal receivers in CALLBACKS_ALLOWED_NETWORKS.",
                id="callbacks.W001",
            )
        ]
    return []
