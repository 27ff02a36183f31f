"""A receiver built into the service for the README's first callback (`make run` turns it on).

Off by default: a production service must not be its own callback target.
"""

import logging

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

logger = logging.getLogger(__name__)


@csrf_exempt
def echo(request):
    logger.info(
        "demo receiver got %s %s task=%s attempt=%s (%d bytes)",
        request.method,
        request.path,
        request.headers.get("X-Callback-Task-Id"),
        request.headers.get("X-Callback-Attempt"),
        len(request.body),
    )
    return JsonResponse({"received": True, "bytes": len(request.body)})
