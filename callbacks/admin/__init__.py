"""The operator console: one module per group of models; importing them registers them."""

from callbacks.admin import broker, protection, schedules, settings, tasks, tenants  # noqa: F401
