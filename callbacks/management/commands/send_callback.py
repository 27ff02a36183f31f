"""manage.py send_callback URL [--method M] [--header K:V ...] [--body B] [--body-format F] [--tenant NAME]
[--delay S] [--count N] [--queue Q] [--priority P] [--wait [--wait-timeout S]]: register callbacks by hand,
checked as the API checks them; with --wait, follow them until they are final and sum up what happened."""

import json
import time
from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from callbacks.domain.bounds import MAX_BATCH
from callbacks.domain.callback import clean_callback
from callbacks.domain.vocabulary import FINAL_STATUSES, ActorType
from callbacks.errors import ApplicationError
from callbacks.models import BodyFormat, CallbackTask, HttpMethod, TaskStatus, Tenant
from callbacks.services.tasks import task_create, task_create_batch

ACTOR = "manage.py"
POLL_SECONDS = 0.5
# How the summary names each final status, in its order.
FINAL_NAMES = {
    TaskStatus.SUCCEEDED: "delivered",
    TaskStatus.FAILED: "failed",
    TaskStatus.DEAD: "dead",
    TaskStatus.CANCELLED: "cancelled",
}


class Command(BaseCommand):
    help = (
        "Register a callback to URL (or --count N of them) for a tenant, with the API's checks, and print "
        "each new task's id. Example: send_callback https://example.com/hook --tenant shop "
        "--header 'X-Order: 17' --body '{\"paid\": true}' --delay 60"
    )

    def add_arguments(self, parser):
        parser.add_argument("url", help="http or https URL to call")
        parser.add_argument("--method", default="POST", type=str.upper, choices=HttpMethod.values)
        parser.add_argument(
            "--header", action="append", default=[], metavar="NAME:VALUE", help="a request header; repeatable"
        )
        parser.add_argument(
            "--body",
            help="the body: JSON text for json and form (a form is a JSON object), plain text for xml and raw",
        )
        parser.add_argument("--body-format", default="json", choices=BodyFormat.values)
        parser.add_argument("--tenant", help="tenant name (may be left out when there is only one tenant)")
        parser.add_argument("--delay", type=int, default=None, metavar="SECONDS", help="send this much later")
        parser.add_argument("--count", type=int, default=1, help="how many identical callbacks (default 1)")
        parser.add_argument("--queue", default="default")
        parser.add_argument("--priority", type=int, default=5, help="0..9, higher first (default 5)")
        parser.add_argument("--business-id", default="")
        parser.add_argument("--trace-id", default="")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="follow the callbacks until each is final (a dispatcher and workers must run), then print "
            "how many were delivered, failed or dead; exit 1 unless all were delivered",
        )
        parser.add_argument(
            "--wait-timeout",
            type=float,
            default=600.0,
            metavar="SECONDS",
            help="with --wait: give up after this long (default 600)",
        )

    def handle(self, *args, **options):
        if options["count"] < 1:
            raise CommandError("--count must be at least 1")
        data = _validated(_callback(options))  # the arguments first: no database needed to refuse them
        tenant = _tenant(options["tenant"])
        quiet = options["verbosity"] == 0
        started = time.monotonic()
        ids = self._register(tenant=tenant, data=data, count=options["count"], quiet=quiet)
        if options["wait"]:
            self._wait(ids, started=started, timeout=options["wait_timeout"], quiet=quiet)

    def _register(self, *, tenant, data, count, quiet) -> list:
        if count == 1:
            task, _ = _create(
                lambda: task_create(tenant=tenant, data=data, actor_type=ActorType.USER, actor=ACTOR)
            )
            self.stdout.write(str(task.id))
            return [task.id]
        ids = []
        with tqdm(
            total=count, unit="callbacks", desc="registered", file=self.stderr._out, disable=quiet
        ) as bar:
            remaining = count
            while remaining:
                size = min(remaining, MAX_BATCH)
                tasks = _create(
                    lambda size=size: task_create_batch(
                        tenant=tenant, items=[data] * size, actor_type=ActorType.USER, actor=ACTOR
                    )
                )
                self.stdout.write("\n".join(str(task.id) for task in tasks))
                ids.extend(task.id for task in tasks)
                bar.update(size)
                remaining -= size
        return ids

    def _wait(self, ids, *, started: float, timeout: float, quiet: bool) -> None:
        """A bar of the callbacks final so far, with the counts by outcome, then the summary."""
        pending, done = set(ids), Counter()
        deadline = time.monotonic() + timeout
        with tqdm(
            total=len(ids), unit="callbacks", desc="final", file=self.stderr._out, disable=quiet
        ) as bar:
            while pending and time.monotonic() < deadline:
                newly = final_statuses(pending)
                pending -= set(newly)
                done.update(newly.values())
                bar.update(len(newly))
                bar.set_postfix_str(_counts(done), refresh=True)
                if pending:
                    time.sleep(POLL_SECONDS)
        elapsed = time.monotonic() - started
        summary = f"{_counts(done)}, unfinished {len(pending)} of {len(ids)} in {elapsed:.1f} s"
        if len(ids) > 1 and elapsed > 0:
            summary += f" ({done[TaskStatus.SUCCEEDED] / elapsed:.0f} delivered/s)"
        self.stderr.write(summary)
        if pending:
            raise CommandError(
                f"{len(pending)} callbacks not final after {timeout:g} s (is a worker running?)"
            )
        if done[TaskStatus.SUCCEEDED] != len(ids):
            raise CommandError(
                f"{len(ids) - done[TaskStatus.SUCCEEDED]} of {len(ids)} callbacks not delivered"
            )


def final_statuses(task_ids) -> dict:
    """{task id: status} of those of `task_ids` that are final now."""
    final = {}
    ids = list(task_ids)
    for start in range(0, len(ids), MAX_BATCH):
        rows = CallbackTask.objects.filter(pk__in=ids[start : start + MAX_BATCH], status__in=FINAL_STATUSES)
        final.update(rows.values_list("pk", "status"))
    return final


def _counts(done: Counter) -> str:
    return ", ".join(f"{name} {done[status]}" for status, name in FINAL_NAMES.items())


def _tenant(name: str | None) -> Tenant:
    if name:
        tenant = Tenant.objects.filter(name=name).first()
        if tenant is None:
            raise CommandError(f"No tenant named {name!r} (create one with `manage.py create_tenant NAME`).")
        return tenant
    tenants = list(Tenant.objects.order_by("name")[:2])
    if len(tenants) != 1:
        raise CommandError(
            "Give --tenant NAME" + ("" if tenants else " (there is no tenant yet: create_tenant NAME)")
        )
    return tenants[0]


def _callback(options) -> dict:
    callback = {
        "url": options["url"],
        "method": options["method"],
        "headers": _headers(options["header"]),
        "body_format": options["body_format"],
        "queue": options["queue"],
        "priority": options["priority"],
    }
    if options["body"] is not None:
        callback["body"] = _body(options["body"], options["body_format"])
    if options["delay"] is not None:
        callback["delay_seconds"] = options["delay"]
    for name in ("business_id", "trace_id"):
        if options[name]:
            callback[name] = options[name]
    return callback


def _headers(pairs: list[str]) -> dict:
    headers = {}
    for pair in pairs:
        name, colon, value = pair.partition(":")
        if not colon or not name.strip():
            raise CommandError(f"--header {pair!r}: write it as NAME:VALUE, e.g. 'X-Order: 17'")
        headers[name.strip()] = value.strip()
    return headers


def _body(text: str, body_format: str):
    if body_format not in ("json", "form"):
        return text
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CommandError(f"--body: not JSON ({exc}); a {body_format} body is given as JSON text") from None


def _validated(callback: dict) -> dict:
    try:
        return clean_callback(callback)
    except ApplicationError as exc:
        raise CommandError(_describe(exc.fields)) from None


def _create(call):
    try:
        return call()
    except ApplicationError as exc:
        raise CommandError(f"{exc.message} {_describe(exc.fields) if exc.fields else ''}".strip()) from None


def _describe(errors) -> str:
    """{"url": ["..."], "headers": {"Host": ["..."]}} -> 'url: ...; headers.Host: ...'."""
    parts = []

    def walk(prefix, value):
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list | tuple):
            for inner in value:
                walk(prefix, inner)
        else:
            parts.append(f"{_option(prefix)}: {value}")

    walk("", errors)
    return "; ".join(parts)


def _option(field: str) -> str:
    """The option an operator typed for an API field name."""
    names = {"delay_seconds": "--delay", "body_format": "--body-format", "headers": "--header", "url": "URL"}
    head, _, rest = field.partition(".")
    option = names.get(head, f"--{head.replace('_', '-')}")
    return f"{option} {rest}" if rest else option
