"""Request parsing with a size limit checked before a byte of the body is read."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class LimitedJSONParser(JSONParser):
    """JSON, refused unread when Content-Length is over DATA_UPLOAD_MAX_MEMORY_SIZE.

    DRF reads JSON from the stream and never consults that setting (only HttpRequest.body does).
    Django's stream stops at Content-Length, so checking the header bounds what can be read.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        if limit is not None and request is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                raise RequestDataTooBig(f"The request body is over the limit of {limit} bytes.")
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
