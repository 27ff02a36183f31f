"""The schedule API: cron schedules that create callbacks (`/api/v1/schedules/`, docs/api.md).

The shapes here check types only; callbacks.services.schedules checks the cron expression, the time
zone and the template (with the callback create API's own rules) and answers 400 naming the field.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers as drf
from rest_framework import status
from rest_framework.response import Response

from callbacks import masking, selectors
from callbacks.api.serializers import ErrorSerializer, StrictSerializer, page_serializer
from callbacks.api.views import COMMON_ERRORS, PAGE_PARAMETERS, PAGE_QUERY, TenantApiView
from callbacks.domain.schedule import next_runs
from callbacks.domain.vocabulary import ActorType
from callbacks.models import MissedPolicy
from callbacks.services.schedules import (
    schedule_create,
    schedule_delete,
    schedule_pause,
    schedule_resume,
    schedule_update,
)

TAG = "schedules"
SCHEDULE_ID = OpenApiParameter(
    "schedule_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="the schedule's id"
)
NOT_FOUND = {404: OpenApiResponse(ErrorSerializer, description="no such schedule (or another tenant's)")}
INVALID = {400: OpenApiResponse(ErrorSerializer, description="invalid input: error.fields names each field")}
CRON_HELP = (
    "5 fields (minute hour day month weekday), or 6 with a seconds field first (e.g. '*/10 * * * * *'); "
    "evaluated on the wall clock of `timezone`"
)


@extend_schema_field({"type": "object", "additionalProperties": True})
class TemplateField(drf.JSONField):
    """A callback's create fields (without run_at, delay_seconds, idempotency_key)."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise drf.ValidationError("must be an object with a callback's fields")
        return data

    def to_representation(self, value):
        if isinstance(value, dict) and isinstance(value.get("headers"), dict):
            return {**value, "headers": masking.mask_headers(value["headers"])}
        return value


class ScheduleInputSerializer(StrictSerializer):
    name = drf.CharField(max_length=200, help_text="for people: what the schedule is for")
    cron = drf.CharField(max_length=200, help_text=CRON_HELP)
    timezone = drf.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. Europe/Berlin")
    task_template = TemplateField(help_text="the callback each fire creates: the fields of POST /callbacks/")
    missed_policy = drf.ChoiceField(
        choices=MissedPolicy.choices,
        default=MissedPolicy.SKIP,
        help_text="fires missed while no dispatcher ran: skip them, or send one callback for all",
    )
    paused = drf.BooleanField(default=False, help_text="a paused schedule does not fire")


class ScheduleOutputSerializer(drf.Serializer):
    """A cron schedule and when it fires next."""

    id = drf.UUIDField(help_text="the schedule's id")
    name = drf.CharField(help_text="what the schedule is for")
    cron = drf.CharField(help_text="the cron expression")
    timezone = drf.CharField(help_text="the IANA time zone whose wall clock the expression follows")
    task_template = TemplateField(help_text="the callback each fire creates; secret header values masked")
    missed_policy = drf.ChoiceField(
        choices=MissedPolicy.choices, help_text="what happens to fires missed while no dispatcher ran"
    )
    paused = drf.BooleanField(help_text="true while it does not fire")
    next_fire_at = drf.DateTimeField(allow_null=True, help_text="the next fire; null while paused")
    next_runs = drf.SerializerMethodField(help_text="the next 5 fire times; empty while paused")
    last_fired_at = drf.DateTimeField(allow_null=True, help_text="the last fire; null before the first")
    created_at = drf.DateTimeField(help_text="when it was created")
    updated_at = drf.DateTimeField(help_text="when it last changed")

    @extend_schema_field({"type": "array", "items": {"type": "string", "format": "date-time"}})
    def get_next_runs(self, schedule):
        if schedule.paused:
            return []
        return [drf.DateTimeField().to_representation(at) for at in next_runs(schedule)]


SchedulePageSerializer = page_serializer("SchedulePageSerializer", ScheduleOutputSerializer)


class ScheduleListCreateApi(TenantApiView):
    InputSerializer = ScheduleInputSerializer
    OutputSerializer = ScheduleOutputSerializer
    query_parameters = {"GET": PAGE_QUERY}

    @extend_schema(
        tags=[TAG],
        operation_id="schedules_create",
        summary="Create a schedule",
        description="Each fire of the cron expression creates one callback from `task_template`, checked as "
        "a callback is when the schedule is saved.",
        request=InputSerializer,
        responses={201: OutputSerializer, **INVALID, **COMMON_ERRORS},
        examples=[
            OpenApiExample(
                "Every weekday at 09:00 in Berlin",
                request_only=True,
                value={
                    "name": "daily report",
                    "cron": "0 9 * * 1-5",
                    "timezone": "Europe/Berlin",
                    "task_template": {
                        "url": "https://reports.example.com/hooks/daily",
                        "body": {"report": "sales"},
                    },
                    "missed_policy": "fire_once",
                },
            )
        ],
    )
    def post(self, request):
        data = self.validated(self.InputSerializer, request.data)
        schedule = schedule_create(
            tenant=self.tenant(), data=dict(data), actor_type=ActorType.TENANT, actor=self.actor()
        )
        return Response(self.OutputSerializer(schedule).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        operation_id="schedules_list",
        summary="List schedules",
        description="The tenant's schedules, newest first.",
        parameters=PAGE_PARAMETERS,
        responses={200: SchedulePageSerializer, 400: ErrorSerializer, **COMMON_ERRORS},
    )
    def get(self, request):
        schedules = selectors.schedule_list(tenant=self.tenant())
        return self.page(schedules, self.OutputSerializer, ordering=("-created_at", "-id"))


class ScheduleDetailApi(TenantApiView):
    InputSerializer = ScheduleInputSerializer
    OutputSerializer = ScheduleOutputSerializer

    def schedule(self, schedule_id):
        return selectors.schedule_get(tenant=self.tenant(), schedule_id=schedule_id)

    @extend_schema(
        tags=[TAG],
        operation_id="schedules_retrieve",
        summary="Show a schedule",
        description="The schedule with its next fire times.",
        parameters=[SCHEDULE_ID],
        responses={200: OutputSerializer, **NOT_FOUND, **COMMON_ERRORS},
    )
    def get(self, request, schedule_id):
        return Response(self.OutputSerializer(self.schedule(schedule_id)).data)

    @extend_schema(
        tags=[TAG],
        operation_id="schedules_update",
        summary="Change a schedule",
        parameters=[SCHEDULE_ID],
        request=InputSerializer(partial=True),
        examples=[OpenApiExample("Every hour instead", request_only=True, value={"cron": "0 * * * *"})],
        responses={200: OutputSerializer, **INVALID, **NOT_FOUND, **COMMON_ERRORS},
        description="Change some fields. A new cron or time zone computes the next fire again from now.",
    )
    def patch(self, request, schedule_id):
        schedule = self.schedule(schedule_id)
        serializer = self.InputSerializer(data=request.data, partial=True)
        if not serializer.is_valid():
            raise drf.ValidationError(serializer.errors)
        schedule = schedule_update(
            schedule=schedule,
            data=dict(serializer.validated_data),
            actor_type=ActorType.TENANT,
            actor=self.actor(),
        )
        return Response(self.OutputSerializer(schedule).data)

    @extend_schema(
        tags=[TAG],
        operation_id="schedules_delete",
        summary="Delete a schedule",
        parameters=[SCHEDULE_ID],
        responses={204: OpenApiResponse(description="deleted"), **NOT_FOUND, **COMMON_ERRORS},
        description="Delete the schedule; the callbacks it created stay.",
    )
    def delete(self, request, schedule_id):
        schedule_delete(schedule=self.schedule(schedule_id), actor_type=ActorType.TENANT, actor=self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)


class SchedulePauseApi(TenantApiView):
    OutputSerializer = ScheduleOutputSerializer

    @extend_schema(
        tags=[TAG],
        operation_id="schedules_pause",
        summary="Pause a schedule",
        parameters=[SCHEDULE_ID],
        request=None,
        responses={200: OutputSerializer, **NOT_FOUND, **COMMON_ERRORS},
        description="No fires until resumed; pausing a paused schedule answers 200.",
    )
    def post(self, request, schedule_id):
        schedule = selectors.schedule_get(tenant=self.tenant(), schedule_id=schedule_id)
        schedule = schedule_pause(schedule=schedule, actor_type=ActorType.TENANT, actor=self.actor())
        return Response(self.OutputSerializer(schedule).data)


class ScheduleResumeApi(TenantApiView):
    OutputSerializer = ScheduleOutputSerializer

    @extend_schema(
        tags=[TAG],
        operation_id="schedules_resume",
        summary="Resume a schedule",
        parameters=[SCHEDULE_ID],
        request=None,
        responses={200: OutputSerializer, **NOT_FOUND, **COMMON_ERRORS},
        description="Fires again from now on; fires that fell in the pause are not made up.",
    )
    def post(self, request, schedule_id):
        schedule = selectors.schedule_get(tenant=self.tenant(), schedule_id=schedule_id)
        schedule = schedule_resume(schedule=schedule, actor_type=ActorType.TENANT, actor=self.actor())
        return Response(self.OutputSerializer(schedule).data)
