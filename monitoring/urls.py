from django.urls import path

from monitoring import api, health, views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("readyz/delivery", health.readyz_delivery, name="readyz-delivery"),
    path("metrics", views.metrics, name="prometheus-django-metrics"),
    # Reached through the fall-through of "api/v1/" in taskcenter/urls.py (monitoring is last).
    path("api/v1/stats/", api.StatsApi.as_view(), name="stats"),
]
