"""manage.py callback_stats [--window 5m] [--json] [--tenant NAME] [--queue Q] [--host H]"""

import json

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from callbacks.models import Tenant
from monitoring import selectors


class Command(BaseCommand):
    help = "Delivery statistics of a recent window: QPS, latency percentiles, success rate, errors, pool."

    def add_arguments(self, parser):
        parser.add_argument("--window", default="5m", help="1m to 7d, e.g. 5m, 1h, 24h, 7d (default 5m)")
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
        parser.add_argument("--tenant", help="only this tenant's callbacks (by name)")
        parser.add_argument("--queue", help="only this queue")
        parser.add_argument("--host", help="only this target host")

    def handle(self, *args, **options):
        try:
            window = selectors.parse_window(options["window"])
        except ValueError as exc:
            raise CommandError(f"--window: {exc}") from None
        tenant = None
        if options["tenant"]:
            tenant = Tenant.objects.filter(name=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"No tenant named {options['tenant']!r}.")
        figures = selectors.stats(window=window, tenant=tenant, queue=options["queue"], host=options["host"])
        if options["json"]:
            self.stdout.write(json.dumps(figures, cls=DjangoJSONEncoder, indent=2))
        else:
            self.stdout.write(render_table(figures, options["window"]))


def _num(value, unit=""):
    return "-" if value is None else f"{value:,.2f}{unit}" if isinstance(value, float) else f"{value:,}{unit}"


def _pct(value):
    return "-" if value is None else f"{value * 100:.2f}%"


def render_table(figures: dict, window_name: str) -> str:
    window = figures["window"]
    filters = ", ".join(f"{k}={v}" for k, v in figures["filters"].items() if v) or "all tenants"
    latency = figures["latency_ms"]
    lines = [
        f"Window {window_name}: {window['start']:%Y-%m-%d %H:%M:%S} .. {window['end']:%Y-%m-%d %H:%M:%S} UTC ({filters})",
        "",
        f"  {'attempts':<16}{_num(figures['count'])}",
        f"  {'QPS':<16}{_num(figures['qps'])}",
        f"  {'success rate':<16}{_pct(figures['success_rate'])}",
        f"  {'latency ms':<16}avg {_num(latency['avg'])}  p50 {_num(latency['p50'])}  p90 {_num(latency['p90'])}"
        f"  p95 {_num(latency['p95'])}  p99 {_num(latency['p99'])}  max {_num(latency['max'])}",
        f"  {'pool':<16}active {figures['pool']['active']}  idle {figures['pool']['idle']}"
        f"  ({figures['pool']['workers']} workers alive)",
        "",
        f"  {'status class':<16}{'attempts':>12}{'share':>10}{'success':>10}",
    ]
    for name, part in figures["status_classes"].items():
        lines.append(
            f"  {name:<16}{part['count']:>12,}{_pct(part['share']):>10}{_pct(part['success_rate']):>10}"
        )
    lines += ["", f"  {'errors':<16}{'attempts':>12}{'share':>10}"]
    for name, part in figures["errors"]["by_class"].items():
        lines.append(f"  {name:<16}{part['count']:>12,}{_pct(part['share']):>10}")
    if not figures["errors"]["by_class"]:
        lines.append("  (none)")
    return "\n".join(lines)
