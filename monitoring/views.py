"""GET /metrics: every process's metrics (multiprocess files) plus the database-wide ones."""

import prometheus_client
from django.http import HttpResponse
from prometheus_client import multiprocess

from callbacks.delivery.instruments import multiproc
from monitoring import access
from monitoring.collectors import DatabaseCollector


def metrics(request):
    if not access.may_read_internals(request):
        return access.refusal()
    if multiproc.directory() is not None:
        # django-prometheus's own metrics are prometheus_client metrics too: in multiprocess
        # mode they live in the same directory, so this registry holds them as well.
        multiproc.sweep_dead_processes()
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(DatabaseCollector())
        page = prometheus_client.generate_latest(registry)
    else:
        page = prometheus_client.generate_latest(prometheus_client.REGISTRY)
        page += prometheus_client.generate_latest(_database_registry())
    return HttpResponse(page, content_type=prometheus_client.CONTENT_TYPE_LATEST)


def _database_registry():
    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return registry
