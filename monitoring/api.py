"""GET /api/v1/stats/: the authenticated tenant's delivery statistics."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from callbacks.errors import refuse_unknown_parameters
from monitoring import selectors


def _figures(name, **fields):
    return inline_serializer(name=name, fields=fields)


_Float = serializers.FloatField(allow_null=True)


class StatsApi(APIView):
    class InputSerializer(serializers.Serializer):
        window = serializers.CharField(
            default="5m", help_text="1m to 7d: a number and a unit m, h or d (5m, 1h, 24h, 7d)."
        )
        queue = serializers.CharField(required=False, allow_blank=True, max_length=64)
        host = serializers.CharField(
            required=False, allow_blank=True, max_length=255, help_text="target host name"
        )

        def validate_window(self, value):
            try:
                return selectors.parse_window(value)
            except ValueError as exc:
                raise serializers.ValidationError(str(exc)) from None

    # The query parameters it takes, and no other (as every API operation: callbacks.api.views).
    query_parameters = {"GET": tuple(InputSerializer().fields)}

    OutputSerializer = inline_serializer(
        name="Stats",
        fields={
            "window": _figures(
                "StatsWindow",
                start=serializers.DateTimeField(),
                end=serializers.DateTimeField(),
                seconds=serializers.FloatField(),
            ),
            "filters": serializers.DictField(),
            "count": serializers.IntegerField(help_text="attempts in the window"),
            "qps": serializers.FloatField(help_text="attempts per second"),
            "latency_ms": _figures(
                "StatsLatency", avg=_Float, p50=_Float, p90=_Float, p95=_Float, p99=_Float, max=_Float
            ),
            "success_rate": serializers.FloatField(allow_null=True, help_text="0..1"),
            "successes": serializers.IntegerField(),
            "status_classes": serializers.DictField(
                help_text="per class (2xx, 3xx, 4xx, 5xx, none): count, share, success_rate"
            ),
            "errors": serializers.DictField(
                help_text="count, and by_class: network, timeout, 4xx, 5xx, tls, ... with count and share"
            ),
            "outcomes": serializers.DictField(child=serializers.IntegerField()),
            "pool": _figures(
                "StatsPool",
                active=serializers.IntegerField(),
                idle=serializers.IntegerField(),
                pools=serializers.IntegerField(),
                workers=serializers.IntegerField(),
            ),
        },
    )

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        refuse_unknown_parameters(request.query_params, declared=self.query_parameters, method=request.method)

    @extend_schema(
        operation_id="stats_retrieve",
        parameters=[InputSerializer],
        responses=OutputSerializer,
        summary="Delivery statistics of a recent window",
    )
    def get(self, request):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        figures = selectors.stats(
            window=data["window"],
            tenant=request.user.tenant,
            queue=data.get("queue") or None,
            host=data.get("host") or None,
        )
        return Response(figures)
