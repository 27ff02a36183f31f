"""The shapes of the callback API: what it accepts and what it shows. The rules are the domain's
(callbacks.domain.callback, with the limits of callbacks.domain.bounds); these fields parse JSON types and
turn the domain's refusals into DRF errors naming the field."""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from callbacks import masking
from callbacks.domain import callback, encoding
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

    initial_seconds = bounded(serializers.FloatField, BACKOFF_FIELDS["initial_seconds"], required=False)
    multiplier = bounded(serializers.FloatField, BACKOFF_FIELDS["multiplier"], required=False)
    max_seconds = bounded(serializers.FloatField, BACKOFF_FIELDS["max_seconds"], required=False)

    def validate(self, attrs):
        return ordered(attrs, *callback.BACKOFF_ORDER)


class TimeoutInputSerializer(StrictSerializer):
    """Seconds to connect, and for the whole attempt including reading the response."""

    connect_seconds = bounded(serializers.FloatField, TIMEOUT_FIELDS["connect_seconds"], required=False)
    total_seconds = bounded(serializers.FloatField, TIMEOUT_FIELDS["total_seconds"], required=False)

    def validate(self, attrs):
        return ordered(attrs, *callback.TIMEOUT_ORDER)


class CallbackInputSerializer(StrictSerializer):
    """A callback to deliver. Unknown fields are refused."""

    url = TargetUrlField(max_length=MAX_URL_LENGTH)
    method = serializers.ChoiceField(choices=HttpMethod.choices, default=HttpMethod.POST)
    headers = HeadersField(required=False, default=dict)
    body = BodyField(required=False, allow_null=True, default=None)
    body_format = serializers.ChoiceField(choices=BodyFormat.choices, default=BodyFormat.JSON)
    run_at = AwareDateTimeField(required=False)
    delay_seconds = bounded(serializers.IntegerField, DELAY_SECONDS, required=False)
    priority = bounded(serializers.IntegerField, PRIORITY, default=5)
    queue = QueueNameField(
        max_length=64,
        default="default",
        help_text="a declared queue (default, or one an operator declared with manage.py queue create); "
        "another is a 400 on this field",
    )
    max_retries = bounded(serializers.IntegerField, SETTINGS["MAX_RETRIES"], required=False)
    backoff = BackoffInputSerializer(required=False)
    timeout = TimeoutInputSerializer(required=False)
    success_statuses = SuccessStatusesField(required=False)
    business_id = serializers.CharField(max_length=MAX_LABEL_LENGTH, required=False, allow_blank=True)
    trace_id = serializers.CharField(max_length=MAX_LABEL_LENGTH, required=False, allow_blank=True)
    idempotency_key = serializers.CharField(max_length=MAX_LABEL_LENGTH, required=False)
    ordering_key = serializers.CharField(max_length=MAX_LABEL_LENGTH, required=False, allow_blank=True)

    def validate(self, attrs):
        if "run_at" in attrs and "delay_seconds" in attrs:
            raise serializers.ValidationError({"delay_seconds": ["give run_at or delay_seconds, not both"]})
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

    callbacks = CallbackListField(child=CallbackInputSerializer(), min_length=1, max_length=MAX_BATCH)


class CallbackFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=TaskStatus.choices, required=False)
    business_id = serializers.CharField(max_length=200, required=False)
    trace_id = serializers.CharField(max_length=200, required=False)
    queue = serializers.CharField(max_length=64, required=False)
    created_after = serializers.DateTimeField(required=False, help_text="inclusive, ISO 8601")
    created_before = serializers.DateTimeField(required=False, help_text="inclusive, ISO 8601")


# --- output ---------------------------------------------------------------------------------


class BackoffOutputSerializer(serializers.Serializer):
    initial_seconds = serializers.FloatField(source="backoff_initial_seconds")
    multiplier = serializers.FloatField(source="backoff_multiplier")
    max_seconds = serializers.FloatField(source="backoff_max_seconds")


class TimeoutOutputSerializer(serializers.Serializer):
    connect_seconds = serializers.FloatField(source="connect_timeout_seconds")
    total_seconds = serializers.FloatField(source="total_timeout_seconds")


class CallbackOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField()
    method = serializers.ChoiceField(choices=HttpMethod.choices)
    headers = HeadersField(help_text="secret values masked")
    body = serializers.SerializerMethodField()
    body_format = serializers.ChoiceField(choices=BodyFormat.choices)
    run_at = serializers.DateTimeField()
    priority = serializers.IntegerField()
    queue = serializers.CharField()
    max_retries = serializers.IntegerField()
    backoff = BackoffOutputSerializer(source="*")
    timeout = TimeoutOutputSerializer(source="*")
    success_statuses = serializers.CharField()
    business_id = serializers.CharField()
    trace_id = serializers.CharField()
    idempotency_key = serializers.CharField(allow_null=True)
    ordering_key = serializers.CharField()
    status = serializers.ChoiceField(choices=TaskStatus.choices)
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    last_outcome = serializers.CharField(help_text="the outcome of the last attempt; empty before the first")
    last_error = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(OpenApiTypes.ANY)
    def get_body(self, task):
        return encoding.decode(task.payload, task.body_format)


class CallbackBatchOutputSerializer(serializers.Serializer):
    callbacks = CallbackOutputSerializer(many=True)


class ExecutionRequestSerializer(serializers.Serializer):
    method = serializers.CharField(source="request_method")
    url = serializers.CharField(source="request_url")
    headers = HeadersField(source="request_headers", help_text="secret values masked")


class ExecutionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    attempt = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    duration_ms = serializers.FloatField(allow_null=True)
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    status_code = serializers.IntegerField(allow_null=True)
    response_headers = serializers.DictField(child=serializers.CharField())
    response_body = serializers.CharField(help_text="at most the response body limit (1 MB by default)")
    response_truncated = serializers.BooleanField()
    error = serializers.CharField()
    request = ExecutionRequestSerializer(source="*")


class EventOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    from_status = serializers.CharField(help_text="empty for the creation")
    to_status = serializers.ChoiceField(choices=TaskStatus.choices)
    note = serializers.CharField()


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.JSONField(), help_text="the fields at fault, with reasons"
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


def page_serializer(name: str, item_serializer) -> type[serializers.Serializer]:
    """The schema of one cursor-paginated page of items."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item_serializer(many=True),
        },
    )


CallbackPageSerializer = page_serializer("CallbackPageSerializer", CallbackOutputSerializer)
ExecutionPageSerializer = page_serializer("ExecutionPageSerializer", ExecutionOutputSerializer)
EventPageSerializer = page_serializer("EventPageSerializer", EventOutputSerializer)
