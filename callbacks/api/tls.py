"""The tenant's TLS material toward its receivers through the API: its client certificate (and
key) and the CA certificates its receivers' certificates are verified with.

The key is accepted, never returned: reads show the certificates' subject, issuer, expiry and
fingerprint. Verification itself cannot be turned off; a tenant's CAs are trusted beside the
installation's CALLBACKS_CA_BUNDLE, for its own callbacks only.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from callbacks.api.serializers import StrictSerializer
from callbacks.api.views import COMMON_ERRORS, ERROR, TenantApiView
from callbacks.domain.certificates import MAX_PEM_CHARS
from callbacks.domain.vocabulary import ActorType
from callbacks.services.certificates import (
    ca_certificates_set,
    client_certificate_remove,
    client_certificate_set,
    tls_state,
)

TAG = "tls"
INVALID = {400: OpenApiResponse(ERROR, description="not valid: error.fields names the field and the reason")}


class CertificateSummarySerializer(serializers.Serializer):
    subject = serializers.CharField(help_text="the certificate's subject, as RFC 4514 text")
    issuer = serializers.CharField(help_text="who issued it, as RFC 4514 text")
    expires_at = serializers.DateTimeField(help_text="the end of its validity (notAfter)")
    sha256 = serializers.CharField(help_text="SHA-256 fingerprint of the certificate (DER), hex")


class ClientCertificateSummarySerializer(CertificateSummarySerializer):
    expiring_soon = serializers.BooleanField(help_text="expires within 14 days")


class TlsOutputSerializer(serializers.Serializer):
    client_certificate = ClientCertificateSummarySerializer(
        allow_null=True, help_text="presented to receivers that ask for one; null: none set"
    )
    ca_certificates = CertificateSummarySerializer(
        many=True, help_text="trusted for this tenant's receivers, beside the installation's CAs"
    )


class ClientCertificateInputSerializer(StrictSerializer):
    certificate = serializers.CharField(
        max_length=MAX_PEM_CHARS, trim_whitespace=False, help_text="PEM certificate, then any intermediates"
    )
    key = serializers.CharField(
        max_length=MAX_PEM_CHARS,
        trim_whitespace=False,
        write_only=True,
        help_text="PEM private key of the certificate, unencrypted; stored encrypted, never returned",
    )


class CaCertificatesInputSerializer(StrictSerializer):
    certificates = serializers.CharField(
        max_length=MAX_PEM_CHARS, trim_whitespace=False, help_text="one or more PEM CA certificates"
    )


class TlsApi(TenantApiView):
    @extend_schema(
        tags=[TAG],
        operation_id="tls_retrieve",
        summary="Show the TLS client certificate and CAs",
        responses={200: TlsOutputSerializer, **COMMON_ERRORS},
        description="The tenant's client certificate and CA certificates (never the key).",
    )
    def get(self, request):
        return Response(TlsOutputSerializer(tls_state(self.tenant())).data)


class ClientCertificateApi(TenantApiView):
    @extend_schema(
        tags=[TAG],
        operation_id="tls_client_certificate_set",
        summary="Set the TLS client certificate",
        request=ClientCertificateInputSerializer,
        responses={200: TlsOutputSerializer, **INVALID, **COMMON_ERRORS},
        description=(
            "Set (or replace) the client certificate the tenant's callbacks present when a receiver "
            "asks for one. Refused with the reason if it is not PEM, has expired, or the key does not "
            "belong to it. Attempts already under way finish with the previous certificate."
        ),
    )
    def put(self, request):
        data = self.validated(ClientCertificateInputSerializer, request.data)
        tenant = client_certificate_set(
            tenant=self.tenant(),
            certificate=data["certificate"],
            key=data["key"],
            actor_type=ActorType.TENANT,
            actor=self.actor(),
        )
        return Response(TlsOutputSerializer(tls_state(tenant)).data)

    @extend_schema(
        tags=[TAG],
        operation_id="tls_client_certificate_remove",
        summary="Remove the TLS client certificate",
        request=None,
        responses={204: None, **COMMON_ERRORS},
        description="Stop presenting a client certificate (its key is deleted).",
    )
    def delete(self, request):
        client_certificate_remove(tenant=self.tenant(), actor_type=ActorType.TENANT, actor=self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)


class CaCertificatesApi(TenantApiView):
    @extend_schema(
        tags=[TAG],
        operation_id="tls_ca_certificates_set",
        summary="Set the private CA certificates",
        request=CaCertificatesInputSerializer,
        responses={200: TlsOutputSerializer, **INVALID, **COMMON_ERRORS},
        description=(
            "Trust these CA certificates (a receiver's private CA) for the tenant's callbacks, beside "
            "the installation's; replaces the previous ones. Certificate verification stays on."
        ),
    )
    def put(self, request):
        data = self.validated(CaCertificatesInputSerializer, request.data)
        tenant = ca_certificates_set(
            tenant=self.tenant(),
            certificates=data["certificates"],
            actor_type=ActorType.TENANT,
            actor=self.actor(),
        )
        return Response(TlsOutputSerializer(tls_state(tenant)).data)

    @extend_schema(
        tags=[TAG],
        operation_id="tls_ca_certificates_remove",
        summary="Remove the private CA certificates",
        request=None,
        responses={204: None, **COMMON_ERRORS},
        description="Trust the installation's CAs alone again.",
    )
    def delete(self, request):
        ca_certificates_set(
            tenant=self.tenant(), certificates="", actor_type=ActorType.TENANT, actor=self.actor()
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
