"""The delivery settings (settings.CALLBACKS), read in one place."""

from django.conf import settings


def get(key: str):
    return settings.CALLBACKS[key]
