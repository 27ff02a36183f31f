"""The callback API: one class per operation, each checking input, calling a service or selector, and shaping
the answer. Every object is looked up within the caller's tenant, so another tenant's id is simply not found."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from callbacks import selectors
from callbacks.api import (
    schema,  # noqa: F401  (registers the API-key scheme with drf-spectacular)
    serializers,
)
from callbacks.api.errors import flatten_detail
from callbacks.api.pagination import CursorPage
from callbacks.api.parsers import LimitedJSONParser
from callbacks.domain import tracecontext
from callbacks.domain.callback import BODY_TOO_LARGE, BODY_TOO_LARGE_MESSAGE
from callbacks.domain.vocabulary import ActorType
from callbacks.errors import ApplicationError, refuse_unknown_parameters
from callbacks.services.tasks import task_cancel, task_create, task_create_batch, task_retry

TAG = "callbacks"
ERROR = serializers.ErrorSerializer
COMMON_ERRORS = {401: OpenApiResponse(ERROR, description="missing or invalid API key")}
NOT_FOUND = {404: OpenApiResponse(ERROR, description="no such callback (or another tenant's)")}
INVALID = {
    400: OpenApiResponse(ERROR, description="invalid input: error.fields names each field and the reason"),
    413: OpenApiResponse(ERROR, description="the request, or a callback's encoded body, is over the limit"),
}
TASK_ID = OpenApiParameter("task_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="the task's id")
PAGE_QUERY = ("cursor", "page_size")
PAGE_PARAMETERS = [
    OpenApiParameter(
        "cursor",
        OpenApiTypes.STR,
        description="where a page starts: take it from a page's next or previous link",
    ),
    OpenApiParameter(
        "page_size", OpenApiTypes.INT, description="items per page (1 or more); more than 200 gives 200"
    ),
]


def query_names(filter_serializer) -> tuple[str, ...]:
    """A list's query parameters: its filters and the page's."""
    return (*filter_serializer().fields, *PAGE_QUERY)


class DeclaredQueryParameters:
    """An operation takes the query parameters it declares, by method, and no other. Checked once the
    caller is known and counted, so a request without a key is still told 401 first."""

    query_parameters: dict[str, tuple[str, ...]] = {}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        refuse_unknown_parameters(request.query_params, declared=self.query_parameters, method=request.method)


class TenantApiView(DeclaredQueryParameters, APIView):
    parser_classes = [LimitedJSONParser]

    def actor(self) -> str:
        return str(self.request.user)

    def tenant(self):
        return self.request.user.tenant

    def validated(self, serializer_class, data):
        serializer = serializer_class(data=data)
        if not serializer.is_valid():
            raise_invalid(serializer.errors)
        return serializer.validated_data

    def page(self, queryset, output_serializer, *, ordering, page_size=None):
        paginator = CursorPage(ordering=ordering, page_size=page_size)
        items = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(output_serializer(items, many=True).data)


def raise_invalid(errors) -> None:
    """400 naming each field; 413 when a body is over the size limit, the one error a retry cannot fix by
    changing a field."""
    if _has_code(errors, BODY_TOO_LARGE):
        raise ApplicationError(
            BODY_TOO_LARGE_MESSAGE,
            code=BODY_TOO_LARGE,
            fields=flatten_detail(errors),
            status=413,
        )
    raise drf_serializers.ValidationError(errors)


def _has_code(detail, code: str) -> bool:
    if isinstance(detail, dict):
        return any(_has_code(value, code) for value in detail.values())
    if isinstance(detail, list):
        return any(_has_code(value, code) for value in detail)
    return getattr(detail, "code", None) == code


TRACEPARENT = OpenApiParameter(
    "traceparent",
    str,
    OpenApiParameter.HEADER,
    description="W3C trace context of the caller: the callbacks continue its trace (their attempts' spans "
    "are its children) unless a callback gives its own traceparent, or a trace_id of another trace",
)


class CallbackListCreateApi(TenantApiView):
    InputSerializer = serializers.CallbackInputSerializer
    FilterSerializer = serializers.CallbackFilterSerializer
    OutputSerializer = serializers.CallbackOutputSerializer
    query_parameters = {"GET": query_names(FilterSerializer)}

    @extend_schema(
        tags=[TAG],
        operation_id="callbacks_create",
        summary="Register a callback",
        description="The callback is sent at `run_at` (or `delay_seconds` from now, or at once), retried with "
        "backoff while its target fails in a way worth retrying, and signed when the tenant has a signing "
        "secret. Repeating an `idempotency_key` with the same request returns the first task (200); with a "
        "different request it is refused (409 `idempotency_key_reused`).",
        request=InputSerializer,
        parameters=[TRACEPARENT],
        responses={
            201: OpenApiResponse(OutputSerializer, description="registered"),
            200: OpenApiResponse(
                OutputSerializer,
                description="the existing task: the same request with its idempotency_key again",
            ),
            **INVALID,
            409: OpenApiResponse(ERROR, description="the idempotency_key was used for a different request"),
            **COMMON_ERRORS,
        },
        examples=[
            OpenApiExample(
                "An order paid, in 10 seconds",
                request_only=True,
                value={
                    "url": "https://shop.example.com/hooks/order-paid",
                    "body": {"order": 1042, "status": "paid"},
                    "delay_seconds": 10,
                    "business_id": "order-1042",
                    "idempotency_key": "order-1042-paid",
                },
            ),
            OpenApiExample(
                "At a set time, with its own retry policy",
                request_only=True,
                value={
                    "url": "https://erp.example.com/api/invoices",
                    "method": "PUT",
                    "headers": {"X-Source": "billing"},
                    "body": {"invoice": "INV-7", "amount": "120.00"},
                    "run_at": "2030-01-01T09:00:00+01:00",
                    "priority": 7,
                    "max_retries": 5,
                    "backoff": {"initial_seconds": 2, "multiplier": 2, "max_seconds": 300},
                    "timeout": {"connect_seconds": 5, "total_seconds": 20},
                    "success_statuses": "200-299",
                },
            ),
        ],
    )
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        data = tracecontext.with_caller_context(
            data, tracecontext.from_header(request.headers.get("traceparent"))
        )
        task, created = task_create(
            tenant=self.tenant(), data=data, actor_type=ActorType.TENANT, actor=self.actor()
        )
        return Response(
            self.OutputSerializer(task).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        tags=[TAG],
        operation_id="callbacks_list",
        summary="List callbacks",
        description="The tenant's callbacks, newest first, filtered by the parameters given (all must match); "
        "50 per page by default. Unknown parameters are refused (400 `unknown_parameter`).",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses={200: serializers.CallbackPageSerializer, 400: ERROR, **COMMON_ERRORS},
    )
    def get(self, request):
        filters = self.validated(self.FilterSerializer, request.query_params)
        tasks = selectors.task_list(tenant=self.tenant(), filters=filters)
        return self.page(tasks, self.OutputSerializer, ordering=("-created_at", "-id"))


class CallbackBatchCreateApi(TenantApiView):
    InputSerializer = serializers.CallbackBatchInputSerializer
    OutputSerializer = serializers.CallbackBatchOutputSerializer

    @extend_schema(
        tags=[TAG],
        operation_id="callbacks_batch_create",
        summary="Register a batch of callbacks",
        request=InputSerializer,
        parameters=[TRACEPARENT],
        responses={
            201: OpenApiResponse(OutputSerializer, description="all registered, in the request's order"),
            **INVALID,
            409: OpenApiResponse(ERROR, description="an idempotency_key was used for a different request"),
            **COMMON_ERRORS,
        },
        description="Up to 1000 callbacks, all or nothing: one invalid item refuses the batch. Errors are "
        'reported per index: {"callbacks": {"3": {"url": [...]}}}. An item whose idempotency_key repeats '
        "(in the batch or against a stored task) with the same request gets the task that has the key.",
        examples=[
            OpenApiExample(
                "Two callbacks",
                request_only=True,
                value={
                    "callbacks": [
                        {"url": "https://shop.example.com/hooks/order-paid", "body": {"order": 1042}},
                        {"url": "https://shop.example.com/hooks/order-paid", "body": {"order": 1043}},
                    ]
                },
            )
        ],
    )
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        caller = tracecontext.from_header(request.headers.get("traceparent"))
        tasks = task_create_batch(
            tenant=self.tenant(),
            items=[tracecontext.with_caller_context(item, caller) for item in data["callbacks"]],
            actor_type=ActorType.TENANT,
            actor=self.actor(),
            traceparent=caller,
        )
        return Response(self.OutputSerializer({"callbacks": tasks}).data, status=status.HTTP_201_CREATED)


class CallbackDetailApi(TenantApiView):
    OutputSerializer = serializers.CallbackOutputSerializer

    @extend_schema(
        tags=[TAG],
        operation_id="callbacks_retrieve",
        summary="Show a callback",
        description="The task with its current state: status, attempts made, the next attempt's time and the "
        "last attempt's outcome.",
        parameters=[TASK_ID],
        responses={200: OutputSerializer, **NOT_FOUND, **COMMON_ERRORS},
    )
    def get(self, request, task_id):
        task = selectors.task_get(tenant=self.tenant(), task_id=task_id)
        return Response(self.OutputSerializer(task).data)


class CallbackExecutionListApi(TenantApiView):
    OutputSerializer = serializers.ExecutionOutputSerializer
    query_parameters = {"GET": PAGE_QUERY}

    @extend_schema(
        tags=[TAG],
        operation_id="callbacks_executions_list",
        summary="List a callback's attempts",
        parameters=[TASK_ID, *PAGE_PARAMETERS],
        responses={200: serializers.ExecutionPageSerializer, 400: ERROR, **NOT_FOUND, **COMMON_ERRORS},
        description="The task's attempts, oldest first, each with the request as sent (secrets masked) and "
        "the response; 20 per page by default (each may hold a 1 MB body).",
    )
    def get(self, request, task_id):
        task = selectors.task_get(tenant=self.tenant(), task_id=task_id)
        executions = selectors.execution_list(task=task)
        return self.page(executions, self.OutputSerializer, ordering=("attempt", "id"), page_size=20)


class CallbackEventListApi(TenantApiView):
    OutputSerializer = serializers.EventOutputSerializer
    query_parameters = {"GET": PAGE_QUERY}

    @extend_schema(
        tags=[TAG],
        operation_id="callbacks_events_list",
        summary="List a callback's status changes",
        parameters=[TASK_ID, *PAGE_PARAMETERS],
        responses={200: serializers.EventPageSerializer, 400: ERROR, **NOT_FOUND, **COMMON_ERRORS},
        description="Every change of the task's status with its time and reason, oldest first.",
    )
    def get(self, request, task_id):
        task = selectors.task_get(tenant=self.tenant(), task_id=task_id)
        return self.page(selectors.event_list(task=task), self.OutputSerializer, ordering=("at", "id"))


CONFLICT = {409: OpenApiResponse(ERROR, description="the task's status does not allow this")}


class CallbackCancelApi(TenantApiView):
    OutputSerializer = serializers.CallbackOutputSerializer

    @extend_schema(
        tags=[TAG],
        operation_id="callbacks_cancel",
        summary="Cancel a callback",
        parameters=[TASK_ID],
        request=None,
        responses={200: OutputSerializer, **CONFLICT, **NOT_FOUND, **COMMON_ERRORS},
        description="A scheduled, queued or retrying task is then never sent; a running one finishes the "
        "attempt in flight (recorded) and is not retried. Cancelling a cancelled task again answers 200; "
        "a task already final answers 409.",
    )
    def post(self, request, task_id):
        task = selectors.task_get(tenant=self.tenant(), task_id=task_id)
        task = task_cancel(task=task, actor_type=ActorType.TENANT, actor=self.actor())
        return Response(self.OutputSerializer(task).data)


class CallbackRetryApi(TenantApiView):
    OutputSerializer = serializers.CallbackOutputSerializer

    @extend_schema(
        tags=[TAG],
        operation_id="callbacks_retry",
        summary="Send a callback again now",
        parameters=[TASK_ID],
        request=None,
        responses={200: OutputSerializer, **CONFLICT, **NOT_FOUND, **COMMON_ERRORS},
        description="A failed, dead or retrying task is due again at once, with one more attempt granted; "
        "other statuses answer 409.",
    )
    def post(self, request, task_id):
        task = selectors.task_get(tenant=self.tenant(), task_id=task_id)
        task = task_retry(task=task, actor_type=ActorType.TENANT, actor=self.actor())
        return Response(self.OutputSerializer(task).data)
