"""manage.py breaker list|reset: the circuit breakers of target origins."""

import json

from django.core.management.base import BaseCommand, CommandError

from callbacks.domain.vocabulary import ActorType
from callbacks.errors import ApplicationError
from callbacks.models import BreakerState
from callbacks.services.breakers import breaker_find, breaker_list, breaker_reset, snapshot

ACTOR = "manage.py"

ABOUT = """A breaker opens after consecutive failures of an origin (timeouts, refused connections, TLS
errors, 5xx, 429); while it is open, callbacks to that origin wait, then one probe goes; a success
closes it. Resetting closes it at once and lets the callbacks it held go."""


class Command(BaseCommand):
    help = "List circuit breakers, or reset (close) them."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{list,reset}")
        show = actions.add_parser("list", help="list breakers by origin", description=ABOUT)
        show.add_argument("--state", choices=BreakerState.values, help="only breakers in this state")
        show.add_argument("--json", action="store_true", help="one JSON document instead of a table")

        reset = actions.add_parser("reset", help="close a breaker now", description=ABOUT)
        reset.add_argument(
            "target",
            nargs="?",
            metavar="ORIGIN_OR_ID",
            help="a breaker id (see list), or its origin as a URL: https://api.example.com or "
            "https://api.example.com:8443/any/path",
        )
        reset.add_argument("--all-open", action="store_true", help="reset every breaker not closed")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None

    def _list(self, *, state=None, json=False, **options):
        breakers = list(breaker_list(state=state))
        if json:
            self.stdout.write(_dumps([snapshot(breaker) for breaker in breakers]))
            return
        if not breakers:
            self.stdout.write(
                "no breakers" + (f" in state {state}" if state else " (no origin has failed yet)")
            )
            return
        self.stdout.write(f"{'id':>5}  {'state':<9}  {'fails':>5}  {'opens':>5}  {'next probe':<20}  origin")
        for breaker in breakers:
            probe = f"{breaker.next_probe_at:%Y-%m-%d %H:%M:%S}" if breaker.next_probe_at else "-"
            self.stdout.write(
                f"{breaker.pk:>5}  {breaker.state:<9}  {breaker.consecutive_failures:>5}  "
                f"{breaker.open_count:>5}  {probe:<20}  {breaker.origin}"
            )

    def _reset(self, *, target=None, all_open=False, **options):
        if bool(target) == bool(all_open):
            raise CommandError("name one breaker (ORIGIN_OR_ID) or give --all-open, not both")
        if all_open:
            breakers = list(breaker_list().exclude(state=BreakerState.CLOSED))
        else:
            breakers = [breaker_find(origin_or_id=target)]
        for breaker in breakers:
            was = breaker.state
            breaker_reset(breaker=breaker, actor_type=ActorType.USER, actor=ACTOR)
            self.stdout.write(f"reset breaker {breaker.pk} of {breaker.origin} (was {was})")
        if not breakers:
            self.stdout.write("no open or half-open breakers")


def _dumps(value) -> str:
    return json.dumps(value, indent=2)
