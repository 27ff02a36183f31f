"""The tenant's own audit log through the API: read-only, newest first."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from callbacks.api.serializers import page_serializer
from callbacks.api.views import COMMON_ERRORS, ERROR, PAGE_PARAMETERS, TenantApiView, query_names
from callbacks.models import AuditLog

TAG = "audit"


class AuditFilterSerializer(serializers.Serializer):
    action = serializers.CharField(
        max_length=50, required=False, help_text="only this action, e.g. task.cancel, whitelist.add"
    )
    object_type = serializers.CharField(
        max_length=50, required=False, help_text="only this kind of object, e.g. callbacktask"
    )
    object_id = serializers.CharField(max_length=100, required=False, help_text="the changed object's id")


class AuditOutputSerializer(serializers.Serializer):
    """One change made to one of the tenant's objects."""

    id = serializers.IntegerField(help_text="the entry's id")
    at = serializers.DateTimeField(help_text="when the change was made")
    actor_type = serializers.CharField(help_text="user (operator), tenant (API key) or system")
    actor = serializers.CharField(help_text="who: a user name, tenant:<name> key:<prefix>, or a component")
    action = serializers.CharField(help_text="what, e.g. task.create, task.cancel, whitelist.add")
    object_type = serializers.CharField(help_text="the kind of object changed, e.g. callbacktask")
    object_id = serializers.CharField(help_text="the changed object's id")
    before = serializers.JSONField(allow_null=True, help_text="the object's state before; secrets masked")
    after = serializers.JSONField(allow_null=True, help_text="the object's state after; secrets masked")


AuditPageSerializer = page_serializer("AuditPageSerializer", AuditOutputSerializer)


class AuditListApi(TenantApiView):
    FilterSerializer = AuditFilterSerializer
    OutputSerializer = AuditOutputSerializer
    query_parameters = {"GET": query_names(FilterSerializer)}

    @extend_schema(
        tags=[TAG],
        operation_id="audit_list",
        summary="List the audit log",
        parameters=[FilterSerializer, *PAGE_PARAMETERS],
        responses={200: AuditPageSerializer, 400: ERROR, **COMMON_ERRORS},
        description="Changes made to the tenant's objects, by its API keys, operators or the system; "
        "newest first.",
    )
    def get(self, request):
        filters = self.validated(self.FilterSerializer, request.query_params)
        rows = AuditLog.objects.filter(tenant=self.tenant(), **filters)
        return self.page(rows, self.OutputSerializer, ordering=("-at", "-id"))
