"""Run-time settings through the API. Installation-wide, so for operators (Django staff
users, session or basic auth), not for tenants' API keys, and by the same permissions as in the
admin: viewing the run-time settings to read them, changing them to change them."""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import authentication, permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from callbacks.api.auth import TenantApiKeyAuthentication, ThrottledBasicAuthentication
from callbacks.api.views import DeclaredQueryParameters
from callbacks.domain.vocabulary import ActorType
from callbacks.services.runtime import runtime_settings_effective, runtime_settings_update

OPERATOR_ERRORS = {
    401: OpenApiResponse(description="not logged in, or a wrong HTTP Basic password"),
    403: OpenApiResponse(
        description="not a staff user with the runtime-setting permission (view; change to PATCH): a tenant's API key, for one"
    ),
    429: OpenApiResponse(description="too many failed authentications from this address: wait Retry-After"),
}


class RuntimeSettingPermission(permissions.IsAdminUser):
    """A staff user holding the model permission the admin asks for the same thing: reading takes
    view (or change) permission, changing takes change permission."""

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        user = request.user
        if request.method in permissions.SAFE_METHODS:
            return user.has_perm("callbacks.view_runtimesetting") or user.has_perm(
                "callbacks.change_runtimesetting"
            )
        return user.has_perm("callbacks.change_runtimesetting")


class RuntimeSettingsApi(DeclaredQueryParameters, APIView):
    # A tenant's key is recognised too, so that it is told 403 (not allowed) rather than 401 (not known).
    authentication_classes = [
        authentication.SessionAuthentication,
        ThrottledBasicAuthentication,
        TenantApiKeyAuthentication,
    ]
    permission_classes = [RuntimeSettingPermission]

    class OutputSerializer(serializers.Serializer):
        value = serializers.FloatField()
        default = serializers.FloatField(allow_null=True)
        overridden = serializers.BooleanField()
        help = serializers.CharField()
        minimum = serializers.FloatField()
        maximum = serializers.FloatField()

    @extend_schema(
        tags=["settings"],
        operation_id="settings_retrieve",
        summary="Show the run-time settings (operators)",
        description="The delivery settings in force, each with its default, whether an operator overrides it, "
        "what it does and its bounds. For staff users (session or HTTP Basic); a tenant's API key is 403.",
        responses={
            200: OpenApiResponse(description="{KEY: {value, default, overridden, help, minimum, maximum}}"),
            **OPERATOR_ERRORS,
        },
    )
    def get(self, request):
        return Response(runtime_settings_effective())

    @extend_schema(
        tags=["settings"],
        operation_id="settings_update",
        summary="Change run-time settings (operators)",
        description="Override settings while the service runs, {KEY: value}; null clears an override. Every "
        "process takes the change up within seconds, without a restart. All the changes or none.",
        request={
            "application/json": {"type": "object", "additionalProperties": {"type": ["number", "null"]}}
        },
        responses={
            200: OpenApiResponse(description="the settings in force after the change"),
            400: OpenApiResponse(description="an unknown key or a value out of bounds, named"),
            **OPERATOR_ERRORS,
        },
        examples=[
            OpenApiExample(
                "More in flight, the default retries again",
                request_only=True,
                value={"CONCURRENCY": 100, "MAX_RETRIES": None},
            )
        ],
    )
    def patch(self, request):
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"non_field_errors": ["send an object of KEY: value"]})
        effective = runtime_settings_update(
            changes=dict(request.data), actor_type=ActorType.USER, actor=request.user.get_username()
        )
        return Response(effective)
