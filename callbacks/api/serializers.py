"""The shapes of the callback API: what it accepts and what it shows. The rules are the domain's
(callbacks.domain.callback, with the limits of callbacks.domain.bounds); these fields parse JSON types and
turn the domain's refusals into DRF errors naming the field."""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from callbacks import masking
from callbacks.domain import callback, encoding, tracecontext
from callbacks.domain.bounds import (
    DELAY_SECONDS,
    MAX_BATCH,
    MAX_LABEL_LENGTH,
    MAX_URL_LENGTH,
    PRIORITY,
    SETTINGS,
    Bound,
)
from callbacks.domain.callback import (
    BACKOFF_FIELDS,
    TIMEOUT_FIELDS,
    body_problem,
    ordered_problem,
)
from callbacks.domain.headers import HeaderError, validate_headers
from callbacks.domain.urls import TargetUrlError, validate_target_url
from callbacks.models import BodyFormat, HttpMethod, Outcome, TaskStatus


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a misspelt option is an error instead of being ignored."""

    def to_internal_value(self, data):
        unknown = {}
        if isinstance(data, dict):
            unknown = {name: ["unknown field"] for name in data if name not in self.fields}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **unknown}) from None
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with a UTC offset: a naive time would silently mean the server's zone."""

    default_error_messages = {"naive": "must include a UTC offset, e.g. 2030-01-01T09:00:00+08:00 or ...Z"}

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


@extend_schema_field({"type": "string", "format": "uri", "maxLength": MAX_URL_LENGTH})
class TargetUrlField(serializers.CharField):
    """An http(s) URL with a host, without credentials or fragment (callbacks.domain.urls)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return validate_target_url(value)
        except TargetUrlError as exc:
            raise serializers.ValidationError(str(exc)) from None


@extend_schema_field({"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$", "maxLength": 64})
class TraceparentField(serializers.CharField):
    default_error_messages = {"traceparent": tracecontext.TRACEPARENT_RULE}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return tracecontext.clean_traceparent(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc), code="traceparent") from None


class QueueNameField(serializers.CharField):
    default_error_messages = {
        "queue_name": "must match ^[a-z0-9][a-z0-9_-]{{0,63}}$ (lower-case letters, digits, _ -)"
    }

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return callback.clean_queue_name(value)
        except ValueError:
            self.fail("queue_name")


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 100})
class HeadersField(serializers.JSONField):
    def to_internal_value(self, data):
        try:
            return validate_headers(data)
        except HeaderError as exc:
            raise serializers.ValidationError(exc.errors) from None

    def to_representation(self, value):
        return masking.mask_headers(value)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "example": "200-299"},
            {"type": "array", "items": {"type": "integer", "minimum": 100, "maximum": 599}, "minItems": 1},
        ]
    }
)
class SuccessStatusesField(serializers.Field):
    def to_internal_value(self, data):
        try:
            return callback.clean_success_statuses(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value):
        return value


@extend_schema_field(OpenApiTypes.ANY)
class BodyField(serializers.JSONField):
    """Any JSON value; whether it suits body_format is checked with the other fields."""


def bounded(field_class, bound: Bound, **kwargs):
    """A DRF number field with the bound's limits (its messages are the API's)."""
    return field_class(min_value=bound.minimum, max_value=bound.maximum, **kwargs)


def ordered(attrs: dict, upper: str, lower: str) -> dict:
    problem = ordered_problem(attrs, upper, lower)
    if problem:
        raise serializers.ValidationError({upper: [problem]})
    return attrs


class BackoffInputSerializer(StrictSerializer):
    """Delays between attempts: initial, growing by multiplier, capped at max (task > tenant > installation)."""

    initial_seconds = bounded(
        serializers.FloatField,
        BACKOFF_FIELDS["initial_seconds"],
        required=False,
        help_text="the wait before the first retry, seconds",
    )
    multiplier = bounded(
        serializers.FloatField,
        BACKOFF_FIELDS["multiplier"],
        required=False,
        help_text="each wait is the previous one times this",
    )
    max_seconds = bounded(
        serializers.FloatField,
        BACKOFF_FIELDS["max_seconds"],
        required=False,
        help_text="no wait is longer than this, seconds (at least initial_seconds)",
    )

    def validate(self, attrs):
        return ordered(attrs, *callback.BACKOFF_ORDER)


class TimeoutInputSerializer(StrictSerializer):
    """Seconds to connect, and for the whole attempt including reading the response."""

    connect_seconds = bounded(
        serializers.FloatField,
        TIMEOUT_FIELDS["connect_seconds"],
        required=False,
        help_text="seconds to open the connection (TLS included)",
    )
    total_seconds = bounded(
        serializers.FloatField,
        TIMEOUT_FIELDS["total_seconds"],
        required=False,
        help_text="seconds for the whole attempt, reading the response included (at least connect_seconds)",
    )

    def validate(self, attrs):
        return ordered(attrs, *callback.TIMEOUT_ORDER)


class CallbackInputSerializer(StrictSerializer):
    """A callback to deliver. Unknown fields are refused."""

    url = TargetUrlField(
        max_length=MAX_URL_LENGTH,
        help_text="where to send it: http or https, no credentials or fragment; private addresses are refused "
        "unless the operator allows them",
    )
    method = serializers.ChoiceField(
        choices=HttpMethod.choices, default=HttpMethod.POST, help_text="the HTTP method; any may carry a body"
    )
    headers = HeadersField(
        required=False,
        default=dict,
        help_text="headers to send, {name: value}; hop-by-hop headers, Host, Content-Length and the service's "
        "own (webhook-*, X-Callback-*) are refused",
    )
    body = BodyField(
        required=False,
        allow_null=True,
        default=None,
        help_text="json: any JSON value; xml and raw: a string; form: an object of fields",
    )
    body_format = serializers.ChoiceField(
        choices=BodyFormat.choices,
        default=BodyFormat.JSON,
        help_text="how the body is encoded, and its Content-Type (raw keeps the caller's own Content-Type)",
    )
    run_at = AwareDateTimeField(
        required=False,
        help_text="when to send it, ISO 8601 with a UTC offset; not with delay_seconds. Default: now",
    )
    delay_seconds = bounded(
        serializers.IntegerField,
        DELAY_SECONDS,
        required=False,
        help_text="send it this many seconds from now; not with run_at",
    )
    priority = bounded(
        serializers.IntegerField, PRIORITY, default=5, help_text="0 to 9: a backlog drains the highest first"
    )
    queue = QueueNameField(
        max_length=64,
        default="default",
        help_text="a declared queue (default, or one an operator declared with manage.py queue create); "
        "another is a 400 on this field",
    )
    max_retries = bounded(
        serializers.IntegerField,
        SETTINGS["MAX_RETRIES"],
        required=False,
        help_text="attempts after the first one before the task is dead. Default: the tenant's, else 3",
    )
    backoff = BackoffInputSerializer(required=False, help_text="the waits between attempts")
    timeout = TimeoutInputSerializer(required=False, help_text="how long one attempt may take")
    success_statuses = SuccessStatusesField(
        required=False,
        help_text='the response statuses that mean delivered: ranges and codes ("200-299", "200,202") or a '
        "list of codes. Default: 200-299",
    )
    business_id = serializers.CharField(
        max_length=MAX_LABEL_LENGTH,
        required=False,
        allow_blank=True,
        help_text="your own reference (an order number): sent as X-Business-Id and a list filter",
    )
    trace_id = serializers.CharField(
        max_length=MAX_LABEL_LENGTH,
        required=False,
        allow_blank=True,
        help_text="sent as X-Trace-Id, as given; generated when absent",
    )
    traceparent = TraceparentField(
        max_length=MAX_LABEL_LENGTH,
        required=False,
        allow_blank=True,
        help_text="W3C trace context to continue (else the request's traceparent header): the attempts' "
        "spans are its children, and trace_id becomes its trace id",
    )
    idempotency_key = serializers.CharField(
        max_length=MAX_LABEL_LENGTH,
        required=False,
        help_text="the same key with the same request returns the first task (200); with a different "
        "request it is refused (409 idempotency_key_reused)",
    )
    ordering_key = serializers.CharField(
        max_length=MAX_LABEL_LENGTH,
        required=False,
        allow_blank=True,
        help_text="callbacks sharing a key go one at a time, in creation order, each once the previous is final",
    )

    def validate(self, attrs):
        if "run_at" in attrs and "delay_seconds" in attrs:
            raise serializers.ValidationError({"delay_seconds": ["give run_at or delay_seconds, not both"]})
        disagreement = tracecontext.conflict(
            trace_id=attrs.get("trace_id", ""), traceparent=attrs.get("traceparent", "")
        )
        if disagreement:
            raise serializers.ValidationError({"trace_id": [disagreement]})
        problem = body_problem(attrs.get("body"), attrs["body_format"])
        if problem is not None:
            message, code = problem
            raise serializers.ValidationError({"body": [ErrorDetail(message, code=code)]})
        return attrs


class CallbackListField(serializers.ListField):
    """The batch's callbacks; the count is checked before any item is validated."""

    def to_internal_value(self, data):
        if isinstance(data, list) and len(data) > MAX_BATCH:
            self.fail("max_length", max_length=MAX_BATCH)
        return super().to_internal_value(data)


class CallbackBatchInputSerializer(StrictSerializer):
    """Up to 1000 callbacks, registered all or none."""

    callbacks = CallbackListField(
        child=CallbackInputSerializer(),
        min_length=1,
        max_length=MAX_BATCH,
        help_text=f"1 to {MAX_BATCH} callbacks, each with the fields of a single create",
    )


class CallbackFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=TaskStatus.choices, required=False, help_text="only this status")
    business_id = serializers.CharField(max_length=200, required=False, help_text="only this business_id")
    trace_id = serializers.CharField(max_length=200, required=False, help_text="only this trace_id")
    queue = serializers.CharField(max_length=64, required=False, help_text="only this queue")
    created_after = serializers.DateTimeField(required=False, help_text="inclusive, ISO 8601")
    created_before = serializers.DateTimeField(required=False, help_text="inclusive, ISO 8601")


# --- output ---------------------------------------------------------------------------------


class BackoffOutputSerializer(serializers.Serializer):
    """The waits between attempts, as resolved at creation (task, else tenant, else installation)."""

    initial_seconds = serializers.FloatField(
        source="backoff_initial_seconds", help_text="the wait before the first retry, seconds"
    )
    multiplier = serializers.FloatField(
        source="backoff_multiplier", help_text="each wait is the previous one times this"
    )
    max_seconds = serializers.FloatField(source="backoff_max_seconds", help_text="the longest wait, seconds")


class TimeoutOutputSerializer(serializers.Serializer):
    """How long one attempt may take, as resolved at creation."""

    connect_seconds = serializers.FloatField(source="connect_timeout_seconds", help_text="seconds to connect")
    total_seconds = serializers.FloatField(
        source="total_timeout_seconds", help_text="seconds for the whole attempt"
    )


class CallbackOutputSerializer(serializers.Serializer):
    """A callback task and its current state."""

    id = serializers.UUIDField(help_text="the task's id; the receiver gets it as X-Callback-Task-Id")
    url = serializers.CharField(help_text="the target, as given")
    method = serializers.ChoiceField(choices=HttpMethod.choices, help_text="the HTTP method")
    headers = HeadersField(help_text="the headers sent, secret values masked")
    body = serializers.SerializerMethodField(help_text="the body, as given")
    body_format = serializers.ChoiceField(choices=BodyFormat.choices, help_text="how the body is encoded")
    run_at = serializers.DateTimeField(help_text="the first due time: as given, or the creation time")
    priority = serializers.IntegerField(help_text="0 to 9, highest first")
    queue = serializers.CharField(help_text="the queue that sends it")
    max_retries = serializers.IntegerField(help_text="attempts after the first before it is dead")
    backoff = BackoffOutputSerializer(source="*", help_text="the waits between attempts")
    timeout = TimeoutOutputSerializer(source="*", help_text="how long one attempt may take")
    success_statuses = serializers.CharField(help_text="the statuses that mean delivered, e.g. 200-299")
    business_id = serializers.CharField(help_text="your reference; empty when not given")
    trace_id = serializers.CharField(help_text="as given, or generated")
    traceparent = serializers.CharField(
        help_text="the trace context its attempts continue (their spans' parent); empty without one"
    )
    idempotency_key = serializers.CharField(allow_null=True, help_text="null when not given")
    ordering_key = serializers.CharField(help_text="empty when not given")
    status = serializers.ChoiceField(
        choices=TaskStatus.choices,
        help_text="scheduled, queued, running and retrying are on their way; final: succeeded, failed (an "
        "answer that is not retried: a 4xx but 408/429, a 3xx, a refused address), dead (retries used up on "
        "errors that are retried: 5xx, 408, 429, timeouts, connection errors) and cancelled",
    )
    attempts = serializers.IntegerField(help_text="attempts made so far")
    next_attempt_at = serializers.DateTimeField(
        allow_null=True, help_text="when the next attempt is due; null once final"
    )
    last_status_code = serializers.IntegerField(
        allow_null=True, help_text="the last response's status; null before one or without a response"
    )
    last_outcome = serializers.CharField(help_text="the outcome of the last attempt; empty before the first")
    last_error = serializers.CharField(help_text="the last attempt's error in a few words; empty if none")
    created_at = serializers.DateTimeField(help_text="when it was registered")
    updated_at = serializers.DateTimeField(help_text="when its state last changed")
    finished_at = serializers.DateTimeField(allow_null=True, help_text="when it became final; null before")

    @extend_schema_field(OpenApiTypes.ANY)
    def get_body(self, task):
        return encoding.decode(task.payload, task.body_format)


class CallbackBatchOutputSerializer(serializers.Serializer):
    callbacks = CallbackOutputSerializer(many=True, help_text="the tasks, in the order of the request")


class ExecutionRequestSerializer(serializers.Serializer):
    """The request as it was sent."""

    method = serializers.CharField(source="request_method", help_text="the HTTP method")
    url = serializers.CharField(source="request_url", help_text="the URL")
    headers = HeadersField(source="request_headers", help_text="the headers sent, secret values masked")


class ExecutionOutputSerializer(serializers.Serializer):
    """One attempt to deliver a callback."""

    id = serializers.IntegerField(help_text="the attempt's id")
    attempt = serializers.IntegerField(help_text="1 for the first attempt, 2 for the first retry ...")
    started_at = serializers.DateTimeField(help_text="when the request started")
    duration_ms = serializers.FloatField(
        allow_null=True, help_text="milliseconds until the response was read"
    )
    outcome = serializers.ChoiceField(
        choices=Outcome.choices, help_text="what happened: success, http_4xx, timeout, connection ..."
    )
    status_code = serializers.IntegerField(
        allow_null=True, help_text="the response's status; null without one"
    )
    response_headers = serializers.DictField(
        child=serializers.CharField(), help_text="at most the response headers limit (32 KiB by default)"
    )
    response_body = serializers.CharField(help_text="at most the response body limit (1 MB by default)")
    response_truncated = serializers.BooleanField(
        help_text="the receiver sent more headers or body than the limits keep"
    )
    http_version = serializers.ChoiceField(
        choices=["1.0", "1.1", "2", ""],
        help_text='the protocol the response came over: "1.1" or "2" (HTTP/2, negotiated over TLS), "1.0" from an old server; '
        '"" when no response came (a timeout, a refused connection)',
    )
    error = serializers.CharField(help_text="what went wrong in a few words; empty on success")
    request = ExecutionRequestSerializer(source="*", help_text="the request as it was sent")


class EventOutputSerializer(serializers.Serializer):
    """One change of a task's status."""

    id = serializers.IntegerField(help_text="the event's id")
    at = serializers.DateTimeField(help_text="when it changed")
    from_status = serializers.CharField(help_text="the status before; empty for the creation")
    to_status = serializers.ChoiceField(choices=TaskStatus.choices, help_text="the status after")
    note = serializers.CharField(help_text="why, e.g. created, cancelled by tenant:acme, attempt 2: http_5xx")


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="machine-readable: invalid, not_found, unknown_parameter, idempotency_key_reused, throttled ..."
    )
    message = serializers.CharField(help_text="for people")
    fields = serializers.DictField(
        child=serializers.JSONField(), help_text="the fields or query parameters at fault, with reasons"
    )


class ErrorSerializer(serializers.Serializer):
    """Every error of the API has this shape."""

    error = ErrorBodySerializer(help_text="what went wrong")


def page_serializer(name: str, item_serializer) -> type[serializers.Serializer]:
    """The schema of one cursor-paginated page of items."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "next": serializers.URLField(allow_null=True, help_text="the next page; null on the last"),
            "previous": serializers.URLField(
                allow_null=True, help_text="the previous page; null on the first"
            ),
            "results": item_serializer(many=True, help_text="this page's items"),
        },
    )


CallbackPageSerializer = page_serializer("CallbackPageSerializer", CallbackOutputSerializer)
ExecutionPageSerializer = page_serializer("ExecutionPageSerializer", ExecutionOutputSerializer)
EventPageSerializer = page_serializer("EventPageSerializer", EventOutputSerializer)
