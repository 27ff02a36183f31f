"""Run-time settings through the API. Installation-wide, so for operators (Django staff
users, session or basic auth), not for tenants' API keys, and by the same permissions as in the
admin: viewing the run-time settings to read them, changing them to change them."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import authentication, permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from callbacks.api.auth import ThrottledBasicAuthentication
from callbacks.domain.vocabulary import ActorType
from callbacks.services.runtime import runtime_settings_effective, runtime_settings_update

OPERATOR_ERRORS = {
    401: OpenApiResponse(description="not logged in, or a wrong HTTP Basic password"),
    403: OpenApiResponse(
        description="not a staff user with the runtime-setting permission (view; change to PATCH)"
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


class RuntimeSettingsApi(APIView):
    authentication_classes = [authentication.SessionAuthentication, ThrottledBasicAuthentication]
    permission_classes = [RuntimeSettingPermission]

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
            200: OpenApiResponse(description="{KEY: {value, default, overridden, help, minimum, maximum}}"),
            **OPERATOR_ERRORS,
        },
    )
    def get(self, request):
        return Response(runtime_settings_effective())

    @extend_schema(
        summary="Change run-time settings (operators); null clears an override",
        request={
            "application/json": {"type": "object", "additionalProperties": {"type": ["number", "null"]}}
        },
        responses={
            200: OpenApiResponse(description="the settings in force after the change"),
            **OPERATOR_ERRORS,
        },
    )
    def patch(self, request):
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"non_field_errors": ["send an object of KEY: value"]})
        effective = runtime_settings_update(
            changes=dict(request.data), actor_type=ActorType.USER, actor=request.user.get_username()
        )
        return Response(effective)
