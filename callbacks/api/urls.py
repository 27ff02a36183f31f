from django.urls import path

from callbacks.api import audit, gone, signing, views, whitelist
from callbacks.api.breakers import BreakerListApi, BreakerResetApi
from callbacks.api.queues import QueueListApi, QueuePurgeApi
from callbacks.api.runtime import RuntimeSettingsApi
from callbacks.api.schedules import (
    ScheduleDetailApi,
    ScheduleListCreateApi,
    SchedulePauseApi,
    ScheduleResumeApi,
)
from callbacks.api.tls import CaCertificatesApi, ClientCertificateApi, TlsApi

# Task ids are matched as plain strings: a malformed id answers the API's JSON 404, not Django's HTML page.
urlpatterns = [
    path("callbacks/", views.CallbackListCreateApi.as_view(), name="callbacks"),
    path("callbacks/batch/", views.CallbackBatchCreateApi.as_view(), name="callbacks-batch"),
    path("callbacks/<str:task_id>/", views.CallbackDetailApi.as_view(), name="callback-detail"),
    path(
        "callbacks/<str:task_id>/executions/",
        views.CallbackExecutionListApi.as_view(),
        name="callback-executions",
    ),
    path("callbacks/<str:task_id>/events/", views.CallbackEventListApi.as_view(), name="callback-events"),
    path("callbacks/<str:task_id>/cancel/", views.CallbackCancelApi.as_view(), name="callback-cancel"),
    path("callbacks/<str:task_id>/retry/", views.CallbackRetryApi.as_view(), name="callback-retry"),
    path("whitelist/", whitelist.WhitelistListCreateApi.as_view(), name="whitelist"),
    path("whitelist/<str:entry_id>/", whitelist.WhitelistDetailApi.as_view(), name="whitelist-detail"),
    path("audit/", audit.AuditListApi.as_view(), name="audit"),
    path("settings/", RuntimeSettingsApi.as_view(), name="runtime-settings"),
    path("schedules/", ScheduleListCreateApi.as_view(), name="schedules"),
    path("schedules/<str:schedule_id>/", ScheduleDetailApi.as_view(), name="schedule-detail"),
    path("schedules/<str:schedule_id>/pause/", SchedulePauseApi.as_view(), name="schedule-pause"),
    path("schedules/<str:schedule_id>/resume/", ScheduleResumeApi.as_view(), name="schedule-resume"),
    path("queues/", QueueListApi.as_view(), name="queues"),
    path("queues/<str:name>/purge/", QueuePurgeApi.as_view(), name="queue-purge"),
    path("breakers/", BreakerListApi.as_view(), name="breakers"),
    path("breakers/<str:breaker_id>/reset/", BreakerResetApi.as_view(), name="breaker-reset"),
    path("signing/", signing.SigningApi.as_view(), name="signing"),
    path("signing/rotate/", signing.SigningRotateApi.as_view(), name="signing-rotate"),
    path(
        "signing/retire-previous/", signing.SigningRetirePreviousApi.as_view(), name="signing-retire-previous"
    ),
    path("gone/", gone.GoneUrlListApi.as_view(), name="gone"),
    path("gone/<str:gone_id>/", gone.GoneUrlDetailApi.as_view(), name="gone-detail"),
    path("tls/", TlsApi.as_view(), name="tls"),
    path("tls/client-certificate/", ClientCertificateApi.as_view(), name="tls-client-certificate"),
    path("tls/ca-certificates/", CaCertificatesApi.as_view(), name="tls-ca-certificates"),
]
