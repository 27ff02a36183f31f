"""OpenAPI descriptions that drf-spectacular cannot infer: the Bearer API-key scheme."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension


class TenantApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "callbacks.api.auth.TenantApiKeyAuthentication"
    name = "tenantApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "tc_...",
            "description": "A tenant API key: `Authorization: Bearer tc_...`.",
        }


class StrictSerializerExtension(OpenApiSerializerExtension):
    """Input serializers that refuse unknown fields say so in the schema."""

    target_class = "callbacks.api.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        return schema
