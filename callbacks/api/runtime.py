"""Run-time settings through the API. Installation-wide, so for operators (Django staff
users, session or basic auth), not for tenants' API keys."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import authentication, permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from callbacks.api.auth import TenantApiKeyAuthentication
from callbacks.api.views import DeclaredQueryParameters
from callbacks.domain.vocabulary import ActorType
from callbacks.services.runtime import runtime_settings_effective, runtime_settings_update


class RuntimeSettingsApi(DeclaredQueryParameters, APIView):
    # A tenant's key is recognised too, so that it is told 403 (not allowed) rather than 401 (not known).
    authentication_classes = [
        authentication.SessionAuthentication,
        authentication.BasicAuthentication,
        TenantApiKeyAuthentication,
    ]
    permission_classes = [permissions.IsAdminUser]

    class OutputSerializer(serializers.Serializer):
        value = serializers.FloatField()
        default = serializers.FloatField(allow_null=True)
        overridden = serializers.BooleanField()
        help = serializers.CharField()
        minimum = serializers.FloatField()
        maximum = serializers.FloatField()

    @extend_schema(
        summary="Run-time settings in force (operators)",
        responses={
            200: OpenApiResponse(description="{KEY: {value, default, overridden, help, minimum, maximum}}")
        },
    )
    def get(self, request):
        return Response(runtime_settings_effective())

    @extend_schema(
        summary="Change run-time settings (operators); null clears an override",
        request={
            "application/json": {"type": "object", "additionalProperties": {"type": ["number", "null"]}}
        },
        responses={200: OpenApiResponse(description="the settings in force after the change")},
    )
    def patch(self, request):
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"non_field_errors": ["send an object of KEY: value"]})
        effective = runtime_settings_update(
            changes=dict(request.data), actor_type=ActorType.USER, actor=request.user.get_username()
        )
        return Response(effective)
