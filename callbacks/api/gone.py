"""URLs gone (410) through the API: which of the tenant's URLs are no longer called, and clearing one.

A receiver that answers 410 Gone says "stop sending here": the tenant's later callbacks to that URL end
`failed`, outcome `gone`, without being sent, until the mark is cleared here (or by an operator).
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from callbacks.api.serializers import page_serializer
from callbacks.api.views import COMMON_ERRORS, ERROR, PAGE_PARAMETERS, PAGE_QUERY, TenantApiView
from callbacks.domain.vocabulary import ActorType
from callbacks.selectors import gone_url_get, gone_url_list
from callbacks.services.gone import gone_url_clear

TAG = "gone"
GONE_ID = OpenApiParameter(
    "gone_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="the gone URL's id"
)
NOT_FOUND = {404: OpenApiResponse(ERROR, description="no such gone URL (or another tenant's)")}


class GoneUrlOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="the gone URL's id, to clear it")
    url = serializers.CharField(help_text="the URL, exactly as the tenant's callbacks name it")
    marked_at = serializers.DateTimeField(help_text="when the receiver answered 410")
    task_id = serializers.UUIDField(allow_null=True, help_text="the callback it answered 410 to")


GoneUrlPageSerializer = page_serializer("GoneUrlPageSerializer", GoneUrlOutputSerializer)


class GoneUrlListApi(TenantApiView):
    OutputSerializer = GoneUrlOutputSerializer
    query_parameters = {"GET": PAGE_QUERY}

    @extend_schema(
        tags=[TAG],
        operation_id="gone_list",
        summary="List the URLs gone (410)",
        parameters=PAGE_PARAMETERS,
        responses={200: GoneUrlPageSerializer, **COMMON_ERRORS},
        description="The tenant's URLs that answered 410 Gone and are no longer called, newest first.",
    )
    def get(self, request):
        return self.page(
            gone_url_list(tenant=self.tenant()), self.OutputSerializer, ordering=("-marked_at", "-id")
        )


class GoneUrlDetailApi(TenantApiView):
    OutputSerializer = GoneUrlOutputSerializer

    @extend_schema(
        tags=[TAG],
        operation_id="gone_retrieve",
        summary="Show a gone URL",
        description="One URL that answered 410 Gone: when, and to which callback.",
        parameters=[GONE_ID],
        responses={200: OutputSerializer, **NOT_FOUND, **COMMON_ERRORS},
    )
    def get(self, request, gone_id):
        return Response(self.OutputSerializer(gone_url_get(tenant=self.tenant(), gone_id=gone_id)).data)

    @extend_schema(
        tags=[TAG],
        operation_id="gone_clear",
        summary="Clear a gone URL",
        parameters=[GONE_ID],
        request=None,
        responses={204: None, **NOT_FOUND, **COMMON_ERRORS},
        description="Call the URL again: the tenant's callbacks to it are delivered from now on. Those that "
        "already ended `gone` stay so (retry them to send them).",
    )
    def delete(self, request, gone_id):
        gone = gone_url_get(tenant=self.tenant(), gone_id=gone_id)
        gone_url_clear(gone=gone, actor_type=ActorType.TENANT, actor=self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)
