"""GET /api/v1/stats/: the authenticated tenant's delivery statistics."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from callbacks.errors import refuse_unknown_parameters
from monitoring import selectors


def _figures(name, help_text, **fields):
    return inline_serializer(name=name, fields=fields, help_text=help_text)


def _latency(which: str):
    return serializers.FloatField(allow_null=True, help_text=f"{which}, milliseconds; null without attempts")


class StatsApi(APIView):
    class InputSerializer(serializers.Serializer):
        window = serializers.CharField(
            default="5m", help_text="1m to 7d: a number and a unit m, h or d (5m, 1h, 24h, 7d)."
        )
        queue = serializers.CharField(
            required=False, allow_blank=True, max_length=64, help_text="only callbacks of this queue"
        )
        host = serializers.CharField(
            required=False, allow_blank=True, max_length=255, help_text="only callbacks to this target host"
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
                "the window the figures cover",
                start=serializers.DateTimeField(help_text="the window's start"),
                end=serializers.DateTimeField(help_text="the window's end: now"),
                seconds=serializers.FloatField(help_text="the window's length"),
            ),
            "filters": serializers.DictField(help_text="the queue and host filters applied"),
            "count": serializers.IntegerField(help_text="attempts in the window"),
            "qps": serializers.FloatField(help_text="attempts per second"),
            "latency_ms": _figures(
                "StatsLatency",
                "attempts' durations",
                avg=_latency("the mean"),
                p50=_latency("the median"),
                p90=_latency("the 90th percentile"),
                p95=_latency("the 95th percentile"),
                p99=_latency("the 99th percentile"),
                max=_latency("the longest"),
            ),
            "success_rate": serializers.FloatField(
                allow_null=True, help_text="successful attempts over all, 0 to 1; null without attempts"
            ),
            "successes": serializers.IntegerField(help_text="successful attempts"),
            "status_classes": serializers.DictField(
                help_text="per class (2xx, 3xx, 4xx, 5xx, none): count, share, success_rate"
            ),
            "errors": serializers.DictField(
                help_text="count, and by_class: network, timeout, 4xx, 5xx, tls, ... with count and share"
            ),
            "outcomes": serializers.DictField(
                child=serializers.IntegerField(),
                help_text="attempts by outcome (success, http_5xx, timeout ...)",
            ),
            "pool": _figures(
                "StatsPool",
                "the workers' connection pools now",
                active=serializers.IntegerField(help_text="connections in use now, all workers"),
                idle=serializers.IntegerField(help_text="connections kept open for reuse"),
                pools=serializers.IntegerField(help_text="target hosts with a connection pool"),
                workers=serializers.IntegerField(help_text="worker processes reporting"),
            ),
        },
    )

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        refuse_unknown_parameters(request.query_params, declared=self.query_parameters, method=request.method)

    @extend_schema(
        tags=["stats"],
        operation_id="stats_retrieve",
        parameters=[InputSerializer],
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(description="a bad window, or an unknown query parameter"),
            401: OpenApiResponse(description="missing or invalid API key"),
        },
        summary="Delivery statistics of a recent window",
        description="The caller's attempts in the window: throughput, latency percentiles, success rate, "
        "status classes, errors by class and outcome, and the connection pools.",
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
