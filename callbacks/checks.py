"""System checks that warn about unsafe settings (numbered, like healthchecks')."""

import os
import re
import ssl

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, connections

# The tag of this module's checks: the delivery settings, which every process of the service
# depends on, the dispatcher's and the cluster's as much as the web's.
DELIVERY = "delivery"

# What run_dispatcher and qcluster check when they start. They serve no URL, template or admin
# page, and the checks of those (tags urls, templates, admin) import the whole web side (the
# URLconf with DRF, drf-spectacular and every view; every template tag library): about 10 MB
# in each of these long-lived processes, for nothing they use. `manage.py check`, `migrate`
# and runserver still run every check.
NON_WEB_CHECKS = [
    DELIVERY,
    Tags.models,
    Tags.database,
    Tags.caches,
    Tags.compatibility,
    Tags.files,
    Tags.security,
    Tags.signals,
    Tags.translation,
]


@register(DELIVERY)
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


@register(DELIVERY)
def check_allowed_networks(app_configs, **kwargs):
    """A network of prefix length 0 exempts a whole address family from the SSRF guard."""
    whole = [
        network for network in settings.CALLBACKS.get("ALLOWED_NETWORKS") or () if network.prefixlen == 0
    ]
    return [
        Warning(
            f"CALLBACKS_ALLOWED_NETWORKS holds {network}: the SSRF guard is off for every IPv{network.version} "
            "address, so callbacks may reach loopback, private and link-local addresses (cloud metadata "
            "addresses stay refused).",
            hint="List only the networks of internal receivers (e.g. 10.1.0.0/16).",
            id="callbacks.W003",
        )
        for network in whole
    ]


@register(DELIVERY)
def check_ca_bundle(app_configs, **kwargs):
    """A CA bundle that cannot be read or holds no certificate would fail every HTTPS callback."""
    path = settings.CALLBACKS.get("CA_BUNDLE")
    if not path:
        return []
    if not os.path.exists(path) or not os.access(path, os.R_OK):
        return [
            Error(
                f"CALLBACKS_CA_BUNDLE={path!r} is not a readable file or directory: every HTTPS callback "
                "would fail certificate verification.",
                hint="Point it at a PEM bundle of CA certificates, or unset it to use certifi's.",
                id="callbacks.E001",
            )
        ]
    try:
        if os.path.isdir(path):
            ssl.create_default_context(capath=path)
        else:
            ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError) as exc:
        return [
            Error(
                f"CALLBACKS_CA_BUNDLE={path!r} holds no usable CA certificates: {exc}",
                hint="It must be PEM-encoded certificates (-----BEGIN CERTIFICATE-----).",
                id="callbacks.E002",
            )
        ]
    return []


@register(DELIVERY)
def check_secret_header_patterns(app_configs, **kwargs):
    errors = []
    for pattern in settings.CALLBACKS.get("SECRET_HEADER_PATTERNS") or ():
        try:
            re.compile(pattern)
        except re.error as exc:
            errors.append(
                Error(
                    f"SECRET_HEADER_PATTERNS: {pattern!r} is not a regular expression: {exc}",
                    id="callbacks.E003",
                )
            )
    return errors


@register(Tags.security, deploy=True)
def check_encryption_keys(app_configs, **kwargs):
    if settings.CALLBACKS_ENCRYPTION_KEYS:
        return []
    return [
        Warning(
            "CALLBACKS_ENCRYPTION_KEYS is not set: the private keys held for tenants are sealed with a key "
            "derived from SECRET_KEY, so rotating SECRET_KEY makes them unreadable.",
            hint="Set CALLBACKS_ENCRYPTION_KEYS to a Fernet key of its own (docs/configuration.md).",
            id="callbacks.W002",
        )
    ]


@register(Tags.database)
def check_autovacuum(app_configs, databases=None, **kwargs):
    """PostgreSQL's autovacuum, asked when the database checks run (`migrate`, `check --database
    default`). Without it the task table's statistics stay those of its last ANALYZE, taken when
    little was due, and its dead rows stay until someone vacuums: the claim's reads grow with a
    backlog they take for a handful of rows, and every burst leaves the table larger."""
    if not databases or "default" not in databases or connections["default"].vendor != "postgresql":
        return []
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('autovacuum') = 'on' AND current_setting('track_counts') = 'on'"
            )
            (running,) = cursor.fetchone()
    except DatabaseError:
        return []  # the database being away is for the commands that need it to say
    if running:
        return []
    return [
        Warning(
            "PostgreSQL's autovacuum is off (autovacuum or track_counts): the task table is never analyzed "
            "nor vacuumed on its own, and claims slow down as backlogs grow.",
            hint="Turn autovacuum on, or run ANALYZE and VACUUM on callbacks_callbacktask from cron (docs/deploy.md).",
            id="callbacks.W004",
        )
    ]
