"""OpenTelemetry traces, exported over OTLP/HTTP when the standard environment asks for it.

On when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and neither
OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none says otherwise); every other OTEL_* variable
(OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS, OTEL_TRACES_SAMPLER,
OTEL_BSP_* ...) means what the OpenTelemetry SDK says it means. Off, `enabled()` is the one cost:
the SDK is not even imported.

Each process has its own provider and exporter thread, made on first use in that process: django-q2
forks its worker processes, and a provider inherited through a fork has no exporter thread. A
process that ends calls `flush()` (the worker does as it stops), because a forked process leaves
without running atexit handlers.

The spans' trace ids are the callbacks' own (callbacks.domain.tracecontext): a span without a
parent is started in the trace it is given, not in a random one, so a callback's spans and the
`traceparent` its receiver gets always name the trace its `trace_id` names.
"""

import contextlib
import contextvars
import logging
import os
import threading

from callbacks.domain.tracecontext import TraceContext, parse_traceparent

logger = logging.getLogger(__name__)

SERVICE_NAME = "taskcenter-callbacks"
FLUSH_SECONDS = 5.0

_lock = threading.Lock()
_enabled: bool | None = None
_provider = None
_provider_pid: int | None = None
# The trace a span without a parent starts in (see _TraceIds).
_root_trace = contextvars.ContextVar("callbacks_root_trace", default=None)


def enabled() -> bool:
    global _enabled
    if _enabled is None:
        _enabled = _asked_for()
    return _enabled


def _asked_for() -> bool:
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    disabled = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    exporters = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    return bool(endpoint) and not disabled and exporters != "none"


def reset() -> None:
    """Read the environment again and drop this process's provider (tests that turn tracing on)."""
    global _enabled, _provider, _provider_pid
    with _lock:
        if _provider is not None and _provider_pid == os.getpid():
            _provider.shutdown()
        _enabled, _provider, _provider_pid = None, None, None


def _tracer():
    global _provider, _provider_pid
    with _lock:
        if _provider is None or _provider_pid != os.getpid():
            _provider, _provider_pid = _make_provider(), os.getpid()
        return _provider.get_tracer("callbacks")


def _make_provider():
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class _TraceIds(RandomIdGenerator):
        def generate_trace_id(self) -> int:
            wanted = _root_trace.get()
            return int(wanted, 16) if wanted else super().generate_trace_id()

    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    resource = Resource.create({} if named else {"service.name": SERVICE_NAME})
    # shutdown_on_exit: the web and dispatcher processes flush at exit; forked workers call flush().
    provider = TracerProvider(resource=resource, id_generator=_TraceIds())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def flush(timeout: float = FLUSH_SECONDS) -> None:
    """Export what this process's spans are waiting for (a process about to end)."""
    provider = _provider
    if provider is None or _provider_pid != os.getpid():
        return
    try:
        provider.force_flush(int(timeout * 1000))
    except Exception:
        logger.warning("exporting the last spans failed", exc_info=True)


def start_span(name: str, *, kind: str, parent: str = "", trace_id: str = "", attributes=None, links=()):
    """A started span (end it with span.end()), child of the `parent` traceparent when one is given,
    else the root of the trace `trace_id` (32 hex), else of a new trace. `kind`: "client", "server",
    "internal". `links`: traceparents this span relates to without being their child. Call only
    when enabled()."""
    from opentelemetry import trace
    from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags

    def span_context(context: TraceContext) -> SpanContext:
        flags = TraceFlags(TraceFlags.SAMPLED if context.sampled else TraceFlags.DEFAULT)
        return SpanContext(
            int(context.trace_id, 16), int(context.span_id, 16), is_remote=True, trace_flags=flags
        )

    context = None
    if parent:
        context = trace.set_span_in_context(NonRecordingSpan(span_context(parse_traceparent(parent))))
    token = _root_trace.set(None if parent else (trace_id or None))
    try:
        return _tracer().start_span(
            name,
            context=context,
            kind=getattr(SpanKind, kind.upper()),
            attributes=attributes,
            links=[Link(span_context(parse_traceparent(link))) for link in links],
        )
    finally:
        _root_trace.reset(token)


def traceparent_of(span) -> str:
    """The W3C traceparent that makes a receiver's spans children of `span`."""
    context = span.get_span_context()
    return TraceContext(
        trace_id=f"{context.trace_id:032x}",
        span_id=f"{context.span_id:016x}",
        sampled=context.trace_flags.sampled,
    ).traceparent


@contextlib.contextmanager
def span(name: str, **options):
    """start_span as a context manager when enabled, else nothing at all (yields None); an exception
    marks the span an error."""
    if not enabled():
        yield None
        return
    started = start_span(name, **options)
    try:
        yield started
    except BaseException as exc:
        from opentelemetry.trace import Status, StatusCode

        started.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        started.end()
