"""How the tenant's callbacks are signed, through the API: the scheme, the public keys, rotation.

v1 (HMAC-SHA256) secrets are shown once, when rotated; v1a (ed25519) private keys are never shown,
only their public keys (`whpk_...`), which may be read at any time.
"""

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from callbacks import keys
from callbacks.api.serializers import StrictSerializer
from callbacks.api.views import COMMON_ERRORS, ERROR, TenantApiView
from callbacks.domain.bounds import DEFAULT_SIGNING_OVERLAP_SECONDS, SIGNING_OVERLAP_SECONDS
from callbacks.domain.vocabulary import ActorType, SigningScheme
from callbacks.services.tenants import signing_key_retire_previous, signing_key_rotate, signing_scheme_set

TAG = "signing"
INVALID = {
    400: OpenApiResponse(ERROR, description="invalid input: error.fields names each field and the reason")
}


def signing_state(tenant) -> dict:
    """The tenant's signing as the API shows it: never a private key, never a v1 secret."""
    now = timezone.now()
    v1_rotating = keys.previous_signs(tenant, SigningScheme.V1, now)
    v1a_rotating = keys.previous_signs(tenant, SigningScheme.V1A, now)
    return {
        "scheme": tenant.signing_scheme,
        "v1": {
            "previous_signs_until": tenant.previous_signing_secret_until if v1_rotating else None,
        },
        "v1a": {
            "public_key": keys.public_key_of(tenant.signing_private_key),
            "previous_public_key": keys.public_key_of(tenant.previous_signing_private_key)
            if v1a_rotating
            else None,
            "previous_signs_until": tenant.previous_signing_key_until if v1a_rotating else None,
        },
    }


class V1StateSerializer(serializers.Serializer):
    previous_signs_until = serializers.DateTimeField(
        allow_null=True,
        help_text="until when the previous secret signs too (a rotation's overlap); null: it does not",
    )


class V1aStateSerializer(serializers.Serializer):
    public_key = serializers.CharField(help_text="whpk_ + base64 of the raw 32-byte ed25519 public key")
    previous_public_key = serializers.CharField(
        allow_null=True, help_text="the previous key's, while it signs too (a rotation's overlap)"
    )
    previous_signs_until = serializers.DateTimeField(
        allow_null=True,
        help_text="until when the previous key signs too (a rotation's overlap); null: it does not",
    )


class SigningOutputSerializer(serializers.Serializer):
    scheme = serializers.ChoiceField(
        choices=SigningScheme.choices,
        help_text="what webhook-signature carries: v1 (HMAC-SHA256) or v1a (ed25519)",
    )
    v1 = V1StateSerializer(help_text="HMAC-SHA256 with the whsec_ secret (never shown here)")
    v1a = V1aStateSerializer(help_text="ed25519: the public keys receivers verify with")


class SchemeInputSerializer(StrictSerializer):
    scheme = serializers.ChoiceField(
        choices=SigningScheme.choices, help_text="v1 (HMAC-SHA256) or v1a (ed25519)"
    )


class RotateInputSerializer(StrictSerializer):
    scheme = serializers.ChoiceField(choices=SigningScheme.choices, help_text="whose key to rotate")
    overlap_seconds = serializers.IntegerField(
        required=False,
        default=DEFAULT_SIGNING_OVERLAP_SECONDS,
        min_value=SIGNING_OVERLAP_SECONDS.minimum,
        max_value=SIGNING_OVERLAP_SECONDS.maximum,
        help_text="how long the previous key keeps signing beside the new one; 0 stops it at once",
    )


class RotateOutputSerializer(SigningOutputSerializer):
    secret = serializers.CharField(
        required=False, help_text="v1 only: the new whsec_ secret, shown this once and never again"
    )


class SigningApi(TenantApiView):
    OutputSerializer = SigningOutputSerializer
    InputSerializer = SchemeInputSerializer

    @extend_schema(
        tags=[TAG],
        operation_id="signing_retrieve",
        summary="Show how callbacks are signed",
        responses={200: OutputSerializer, **COMMON_ERRORS},
        description="How callbacks are signed, and the public keys v1a signatures verify with.",
    )
    def get(self, request):
        return Response(self.OutputSerializer(signing_state(self.tenant())).data)

    @extend_schema(
        tags=[TAG],
        operation_id="signing_update",
        summary="Choose the signing scheme",
        request=InputSerializer,
        responses={200: OutputSerializer, **INVALID, **COMMON_ERRORS},
        description="Choose the scheme; attempts from now on carry its signatures. Give receivers the "
        "other scheme's key before switching (both keys exist from the tenant's creation).",
    )
    def patch(self, request):
        data = self.validated(self.InputSerializer, request.data)
        tenant = signing_scheme_set(
            tenant=self.tenant(), scheme=data["scheme"], actor_type=ActorType.TENANT, actor=self.actor()
        )
        return Response(self.OutputSerializer(signing_state(tenant)).data)


class SigningRotateApi(TenantApiView):
    InputSerializer = RotateInputSerializer
    OutputSerializer = RotateOutputSerializer

    @extend_schema(
        tags=[TAG],
        operation_id="signing_rotate",
        summary="Rotate a signing key",
        request=InputSerializer,
        responses={200: OutputSerializer, **INVALID, **COMMON_ERRORS},
        description="A new key for the scheme; the current one keeps signing beside it for overlap_seconds, "
        "so webhook-signature carries both signatures and receivers switch without missing a callback.",
    )
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        given = signing_key_rotate(
            tenant=self.tenant(),
            scheme=data["scheme"],
            overlap_seconds=data["overlap_seconds"],
            actor_type=ActorType.TENANT,
            actor=self.actor(),
        )
        tenant = self.tenant()
        tenant.refresh_from_db()
        answer = signing_state(tenant)
        if data["scheme"] == SigningScheme.V1:
            answer["secret"] = given
        response = Response(self.OutputSerializer(answer).data)
        response["Cache-Control"] = "no-store"
        return response


class SigningRetirePreviousApi(TenantApiView):
    InputSerializer = SchemeInputSerializer
    OutputSerializer = SigningOutputSerializer

    @extend_schema(
        tags=[TAG],
        operation_id="signing_retire_previous",
        summary="Retire the previous signing key",
        request=InputSerializer,
        responses={200: OutputSerializer, **INVALID, **COMMON_ERRORS},
        description="Stop signing with the scheme's previous key now, before its overlap ends.",
    )
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        signing_key_retire_previous(
            tenant=self.tenant(), scheme=data["scheme"], actor_type=ActorType.TENANT, actor=self.actor()
        )
        tenant = self.tenant()
        tenant.refresh_from_db()
        return Response(self.OutputSerializer(signing_state(tenant)).data)
