"""One exception handler: every API error is {"error": {"code", "message", "fields"}}."""

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from callbacks.errors import ApplicationError


def flatten_detail(detail):
    """DRF error details -> plain JSON: lists of strings, nested dicts kept by field."""
    if isinstance(detail, dict):
        return {str(key): flatten_detail(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [flatten_detail(item) for item in detail]
    return str(detail)


def error_response(*, status_code: int, code: str, message: str, fields: dict | None = None, headers=None):
    body = {"error": {"code": code, "message": message, "fields": fields or {}}}
    return Response(body, status=status_code, headers=headers)


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return error_response(status_code=exc.status, code=exc.code, message=exc.message, fields=exc.fields)
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return error_response(status_code=400, code="invalid", message="Invalid input.", fields=fields)
    if isinstance(exc, RequestDataTooBig):
        # Raised before the body is parsed (callbacks.api.parsers); the request is refused unread.
        return error_response(status_code=413, code="request_too_large", message=str(exc))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500 handling and logging take over

    if isinstance(exc, exceptions.ValidationError):
        detail = flatten_detail(exc.detail)
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        return error_response(status_code=400, code="invalid", message="Invalid input.", fields=fields)

    headers = {}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(int(exc.wait) + (0 if float(exc.wait).is_integer() else 1))
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
        response.status_code = status.HTTP_401_UNAUTHORIZED
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.APIException) and isinstance(exc.detail, str | exceptions.ErrorDetail):
        code = getattr(exc.detail, "code", code) or code
    message = str(exc.detail) if isinstance(exc, exceptions.APIException) else str(exc)
    return error_response(
        status_code=response.status_code, code=str(code), message=message, headers=headers or None
    )


class UnknownApiPathApi(APIView):
    """Any path under /api/ that names no operation: the JSON 404 of the API, whatever the method (Django's
    own 404 is an HTML page). A tenant's request still counts against its rate budget."""

    permission_classes = []

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raise exceptions.NotFound(f"No API operation at {request.path}; the API is described at /api/docs/.")
