"""The tenant's URL whitelist through the API: list, add, show and remove entries.

Turning enforcement on or off is left to operators (the admin, `manage.py whitelist enforce`), and so is
widening an enforced whitelist, unless the key has the whitelist scope an operator gives
(`manage.py rotate_api_key --manages-whitelist`): a leaked API key must not be enough to lift the restriction.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from callbacks.api.serializers import StrictSerializer, page_serializer
from callbacks.api.views import COMMON_ERRORS, ERROR, PAGE_PARAMETERS, TenantApiView
from callbacks.domain.vocabulary import ActorType
from callbacks.models import UrlWhitelistEntry
from callbacks.selectors import whitelist_entry_get
from callbacks.services.whitelist import whitelist_entry_create, whitelist_entry_delete

TAG = "whitelist"
ENTRY_ID = OpenApiParameter("entry_id", OpenApiTypes.INT, OpenApiParameter.PATH)
NOT_FOUND = {404: OpenApiResponse(ERROR, description="no such entry (or another tenant's)")}


class WhitelistEntryInputSerializer(StrictSerializer):
    host = serializers.CharField(
        max_length=255,
        help_text="exact name, IP address, or *.suffix (subdomains only, not the suffix itself)",
    )
    scheme = serializers.CharField(
        max_length=5, required=False, allow_blank=True, default="", help_text="http, https, or empty for both"
    )
    port = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="1-65535; empty: the scheme's default port"
    )
    path_prefix = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text="starts with /; matched on whole path segments",
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class WhitelistEntryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    host = serializers.CharField()
    scheme = serializers.CharField()
    port = serializers.IntegerField(allow_null=True)
    path_prefix = serializers.CharField()
    enabled = serializers.BooleanField()
    note = serializers.CharField()
    created_at = serializers.DateTimeField()


WhitelistPageSerializer = page_serializer("WhitelistPageSerializer", WhitelistEntryOutputSerializer)


class WhitelistListCreateApi(TenantApiView):
    InputSerializer = WhitelistEntryInputSerializer
    OutputSerializer = WhitelistEntryOutputSerializer

    @extend_schema(
        tags=[TAG],
        operation_id="whitelist_list",
        parameters=PAGE_PARAMETERS,
        responses={200: WhitelistPageSerializer, 400: ERROR, **COMMON_ERRORS},
        description="The tenant's whitelist entries, newest first.",
    )
    def get(self, request):
        entries = UrlWhitelistEntry.objects.filter(tenant=self.tenant())
        return self.page(entries, self.OutputSerializer, ordering=("-created_at", "-id"))

    @extend_schema(
        tags=[TAG],
        operation_id="whitelist_create",
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: OpenApiResponse(ERROR, description="an invalid pattern: error.fields names the field"),
            403: OpenApiResponse(
                ERROR,
                description="whitelist_enforced: the whitelist is enforced and this key lacks the whitelist scope",
            ),
            409: OpenApiResponse(ERROR, description="the same entry exists already"),
            **COMMON_ERRORS,
        },
    )
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        entry = whitelist_entry_create(
            tenant=self.tenant(),
            **data,
            actor_type=ActorType.TENANT,
            actor=self.actor(),
            key_manages_whitelist=self.request.auth.manages_whitelist,
        )
        return Response(self.OutputSerializer(entry).data, status=status.HTTP_201_CREATED)


class WhitelistDetailApi(TenantApiView):
    OutputSerializer = WhitelistEntryOutputSerializer

    @extend_schema(
        tags=[TAG],
        operation_id="whitelist_retrieve",
        parameters=[ENTRY_ID],
        responses={200: OutputSerializer, **NOT_FOUND, **COMMON_ERRORS},
    )
    def get(self, request, entry_id):
        return Response(
            self.OutputSerializer(whitelist_entry_get(tenant=self.tenant(), entry_id=entry_id)).data
        )

    @extend_schema(
        tags=[TAG],
        operation_id="whitelist_destroy",
        parameters=[ENTRY_ID],
        request=None,
        responses={204: None, **NOT_FOUND, **COMMON_ERRORS},
    )
    def delete(self, request, entry_id):
        entry = whitelist_entry_get(tenant=self.tenant(), entry_id=entry_id)
        whitelist_entry_delete(entry=entry, actor_type=ActorType.TENANT, actor=self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)
