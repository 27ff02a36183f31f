"""Cursor pagination: stable pages over tables that grow while they are read, at any depth, in constant time."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination


class CursorPage(CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "-created_at"

    def __init__(self, *, ordering=None, page_size=None):
        if ordering is not None:
            self.ordering = ordering
        if page_size is not None:
            self.page_size = page_size

    def get_page_size(self, request):
        # DRF quietly falls back to the default for a page_size it cannot use; say what is wrong instead.
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise ValidationError({self.page_size_query_param: ["must be a whole number, 1 or more"]})
        return min(size, self.max_page_size)

    def paginate_queryset(self, queryset, request, view=None):
        # A cursor that decodes is still the client's text: its position must fit the ordering's field
        # (a number for an attempt, a time for created_at) or the query cannot even be built.
        try:
            return super().paginate_queryset(queryset, request, view)
        except (ValueError, TypeError, OverflowError, DjangoValidationError):
            if request.query_params.get(self.cursor_query_param) is None:
                raise
            raise _invalid_cursor() from None

    def decode_cursor(self, request):
        # DRF answers a bad cursor with 404, which reads as "no such list"; it is bad input.
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise _invalid_cursor() from None


def _invalid_cursor() -> ValidationError:
    return ValidationError(
        {CursorPage.cursor_query_param: ["invalid cursor: use a page's next or previous link"]}
    )
