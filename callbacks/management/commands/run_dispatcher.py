import signal

from django.core.management.base import BaseCommand

from callbacks.checks import NON_WEB_CHECKS
from callbacks.delivery.dispatcher import Dispatcher, Stop


class Command(BaseCommand):
    requires_system_checks = NON_WEB_CHECKS
    help = (
        "Run the dispatcher: claims due callbacks and hands them to the django-q2 workers. "
        "Start as many as you like; one leads, the others stand by. Stops cleanly on SIGTERM/SIGINT."
    )

    def handle(self, *args, **options):
        stop = Stop()

        def request_stop(signum, frame):
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        Dispatcher().run(stop)
