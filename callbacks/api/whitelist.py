"""The tenant's URL whitelist through the API: list, add, show and remove entries.

Turning enforcement on or off is left to operators (the admin, `manage.py whitelist enforce`), and so is
widening an enforced whitelist, unless the key has the whitelist scope an operator gives
(`manage.py rotate_api_key --manages-whitelist`): a leaked API key must not be enough to lift the restriction.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from callbacks.api.serializers import StrictSerializer, page_serializer
from callbacks.api.views import COMMON_ERRORS, ERROR, PAGE_PARAMETERS, PAGE_QUERY, TenantApiView
from callbacks.domain.vocabulary import ActorType
from callbacks.models import UrlWhitelistEntry
from callbacks.selectors import whitelist_entry_get
from callbacks.services.whitelist import whitelist_entry_create, whitelist_entry_delete

TAG = "whitelist"
ENTRY_ID = OpenApiParameter("entry_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="the entry's id")
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
    note = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text="for people: why it is allowed",
    )


class WhitelistEntryOutputSerializer(serializers.Serializer):
    """A pattern of target URLs the tenant may call."""

    id = serializers.IntegerField(help_text="the entry's id")
    host = serializers.CharField(help_text="exact name, IP address, or *.suffix")
    scheme = serializers.CharField(help_text="http, https, or empty for both")
    port = serializers.IntegerField(allow_null=True, help_text="null: the scheme's default port")
    path_prefix = serializers.CharField(help_text="empty: any path")
    enabled = serializers.BooleanField(help_text="a disabled entry allows nothing")
    note = serializers.CharField(help_text="why it is allowed")
    created_at = serializers.DateTimeField(help_text="when it was added")


WhitelistPageSerializer = page_serializer("WhitelistPageSerializer", WhitelistEntryOutputSerializer)


class WhitelistListCreateApi(TenantApiView):
    InputSerializer = WhitelistEntryInputSerializer
    OutputSerializer = WhitelistEntryOutputSerializer
    query_parameters = {"GET": PAGE_QUERY}

    @extend_schema(
        tags=[TAG],
        operation_id="whitelist_list",
        summary="List whitelist entries",
        parameters=PAGE_PARAMETERS,
        responses={200: WhitelistPageSerializer, 400: ERROR, **COMMON_ERRORS},
        description="The tenant's whitelist entries, newest first. While an operator has the tenant enforce "
        "its whitelist, only URLs matching an enabled entry are accepted and sent.",
    )
    def get(self, request):
        entries = UrlWhitelistEntry.objects.filter(tenant=self.tenant())
        return self.page(entries, self.OutputSerializer, ordering=("-created_at", "-id"))

    @extend_schema(
        tags=[TAG],
        operation_id="whitelist_create",
        summary="Add a whitelist entry",
        description="Allow a pattern of target URLs; the same entry twice answers 409.",
        request=InputSerializer,
        examples=[
            OpenApiExample(
                "The shop's hooks over https",
                request_only=True,
                value={
                    "host": "*.shop.example.com",
                    "scheme": "https",
                    "path_prefix": "/hooks",
                    "note": "shop",
                },
            )
        ],
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
        summary="Show a whitelist entry",
        description="One entry of the tenant's whitelist.",
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
        summary="Remove a whitelist entry",
        description="URLs it alone allowed are refused from then on, at creation and before each attempt.",
        parameters=[ENTRY_ID],
        request=None,
        responses={204: OpenApiResponse(description="removed"), **NOT_FOUND, **COMMON_ERRORS},
    )
    def delete(self, request, entry_id):
        entry = whitelist_entry_get(tenant=self.tenant(), entry_id=entry_id)
        whitelist_entry_delete(entry=entry, actor_type=ActorType.TENANT, actor=self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)
