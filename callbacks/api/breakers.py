"""Circuit breakers through the API: the breakers of the origins the tenant calls, and reset.

A breaker belongs to an origin, not to a tenant: every tenant calling that origin sees its state, and a
reset lets every tenant's tasks to it go. Its error text is not shared: a tenant sees the last error of
its own callbacks to the origin, never another tenant's. A tenant sees and resets only breakers of origins it has
sent (or meant to send) callbacks to; any other id is 404.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from callbacks.api.serializers import StrictSerializer, page_serializer
from callbacks.api.views import COMMON_ERRORS, ERROR, PAGE_PARAMETERS, TenantApiView, query_names
from callbacks.domain.vocabulary import ActorType
from callbacks.models import BreakerState
from callbacks.services.breakers import breaker_concurrency, breaker_get, breaker_list, breaker_reset

TAG = "breakers"
BREAKER_ID = OpenApiParameter(
    "breaker_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="the breaker's id"
)
NOT_FOUND = {
    404: OpenApiResponse(ERROR, description="no such breaker, or one of an origin the tenant never called")
}


class BreakerOutputSerializer(serializers.Serializer):
    """The circuit breaker of one target origin."""

    id = serializers.IntegerField(help_text="the breaker's id")
    origin = serializers.CharField(help_text="scheme://host:port")
    state = serializers.ChoiceField(
        choices=BreakerState.choices,
        help_text="closed: callbacks go; open: they wait until next_probe_at; half_open: one probe is in flight",
    )
    consecutive_failures = serializers.IntegerField(help_text="failures in a row since the last success")
    open_count = serializers.IntegerField(
        help_text="openings since it last closed; the open period doubles with each"
    )
    opened_at = serializers.DateTimeField(allow_null=True, help_text="when it last opened")
    next_probe_at = serializers.DateTimeField(
        allow_null=True, help_text="when an open breaker lets one probe through"
    )
    last_error = serializers.SerializerMethodField(
        help_text="the last failure of this tenant's own callbacks to the origin (empty when none failed): "
        "the breaker also counts other tenants' failures, whose errors are theirs"
    )
    concurrency_limit = serializers.IntegerField(
        allow_null=True,
        help_text="callbacks in flight the origin gets while slowed down (it answered 429 or 503): halved "
        "at each such answer, one more at each healthy one; null at the configured limit",
    )
    effective_concurrency_limit = serializers.SerializerMethodField(
        help_text="callbacks the origin may have in flight now: the configured limit, or concurrency_limit "
        "while it is slowed down"
    )
    updated_at = serializers.DateTimeField(help_text="when it last changed")

    def get_effective_concurrency_limit(self, breaker) -> int:
        return breaker_concurrency(breaker)

    @extend_schema_field(OpenApiTypes.STR)
    def get_last_error(self, breaker) -> str:
        # breaker_list / breaker_get annotate it for the asking tenant; never the breaker's own text.
        return getattr(breaker, "own_last_error", None) or ""


class BreakerFilterSerializer(StrictSerializer):
    state = serializers.ChoiceField(choices=BreakerState.choices, required=False, help_text="only this state")


BreakerPageSerializer = page_serializer("BreakerPageSerializer", BreakerOutputSerializer)


class BreakerListApi(TenantApiView):
    FilterSerializer = BreakerFilterSerializer
    OutputSerializer = BreakerOutputSerializer
    query_parameters = {"GET": query_names(FilterSerializer)}

    @extend_schema(
        tags=[TAG],
        operation_id="breakers_list",
        summary="List circuit breakers",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses={200: BreakerPageSerializer, 400: ERROR, **COMMON_ERRORS},
        description="Breakers of the origins the tenant calls, by origin. An origin that never failed has none.",
    )
    def get(self, request):
        filters = self.validated(self.FilterSerializer, request.query_params)
        breakers = breaker_list(tenant=self.tenant(), state=filters.get("state"))
        return self.page(breakers, self.OutputSerializer, ordering=("origin", "id"))


class BreakerResetApi(TenantApiView):
    OutputSerializer = BreakerOutputSerializer

    @extend_schema(
        tags=[TAG],
        operation_id="breakers_reset",
        summary="Reset a circuit breaker",
        parameters=[BREAKER_ID],
        request=None,
        responses={200: OutputSerializer, **NOT_FOUND, **COMMON_ERRORS},
        description="Close the breaker now; the callbacks it held go at once. Resetting a closed breaker "
        "answers 200 and changes nothing but its failure count.",
    )
    def post(self, request, breaker_id):
        breaker = breaker_get(breaker_id=breaker_id, tenant=self.tenant())
        breaker_reset(breaker=breaker, actor_type=ActorType.TENANT, actor=self.actor(), tenant=self.tenant())
        return Response(self.OutputSerializer(breaker_get(breaker_id=breaker_id, tenant=self.tenant())).data)
