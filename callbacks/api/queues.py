"""The queue API: a tenant's view of the queues its callbacks wait in, and purging its own waiting work.

Pausing and resuming a queue stops or starts it for every tenant, so that stays with operators
(`manage.py queue pause|resume NAME`, the admin); the API shows the paused flag.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers as drf
from rest_framework.response import Response

from callbacks import queues
from callbacks.api.serializers import ErrorSerializer
from callbacks.api.views import COMMON_ERRORS, TenantApiView
from callbacks.domain.vocabulary import ActorType
from callbacks.services.queues import queue_purge

TAG = "queues"
QUEUE_NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH, description="the queue's name")


class QueueCountsSerializer(drf.Serializer):
    scheduled = drf.IntegerField(help_text="waiting for their time")
    queued = drf.IntegerField(help_text="handed to a worker")
    running = drf.IntegerField(help_text="being sent")
    retrying = drf.IntegerField(help_text="waiting for their next attempt")


class QueueOutputSerializer(drf.Serializer):
    """A queue, as the caller sees it."""

    name = drf.CharField(help_text="the queue's name")
    paused = drf.BooleanField(help_text="paused by an operator: its tasks wait, none is lost")
    counts = QueueCountsSerializer(help_text="the caller's unfinished callbacks in the queue, by status")


class QueueListOutputSerializer(drf.Serializer):
    queues = QueueOutputSerializer(many=True, help_text="by name")


class QueuePurgeOutputSerializer(drf.Serializer):
    queue = drf.CharField(help_text="the queue's name")
    cancelled = drf.IntegerField(help_text="the caller's waiting callbacks now cancelled")


class QueueListApi(TenantApiView):
    @extend_schema(
        tags=[TAG],
        operation_id="queues_list",
        summary="List queues",
        responses={200: QueueListOutputSerializer, **COMMON_ERRORS},
        description="Queues holding the caller's unfinished callbacks, plus the default and any an operator "
        "paused, with counts by status.",
    )
    def get(self, request):
        return Response(QueueListOutputSerializer({"queues": queues.queue_list(tenant=self.tenant())}).data)


class QueuePurgeApi(TenantApiView):
    @extend_schema(
        tags=[TAG],
        operation_id="queues_purge",
        summary="Cancel the caller's waiting callbacks of a queue",
        parameters=[QUEUE_NAME],
        request=None,
        responses={
            200: QueuePurgeOutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="not a queue name"),
            **COMMON_ERRORS,
        },
        description="Cancel the caller's callbacks waiting in the queue (scheduled, queued, retrying): none of "
        "them is sent afterwards. Callbacks being sent finish. Other tenants' callbacks are not touched.",
    )
    def post(self, request, name):
        cancelled = queue_purge(
            name=name, tenant=self.tenant(), actor_type=ActorType.TENANT, actor=self.actor()
        )
        return Response(QueuePurgeOutputSerializer({"queue": name, "cancelled": cancelled}).data)
