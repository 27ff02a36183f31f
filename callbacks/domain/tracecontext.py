"""W3C trace context (traceparent) of a callback: which trace its attempts belong to.

A callback's trace is its `trace_id` when that is a trace id (32 lower-case hex digits, not all
zeros); a free-form label is hashed into one, so the same label always gives the same trace. A
caller that gives a `traceparent` (the field, or the header of the API request) continues its own
trace: the callback's `trace_id` is then the traceparent's trace id, and its attempts are children
of the caller's span (or of the span that created the callback, when tracing is exported).
"""

import hashlib
import re
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
TRACEPARENT_RULE = "must be a W3C traceparent: 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>"


@dataclass(frozen=True)
class TraceContext:
    trace_id: str  # 32 hex
    span_id: str  # 16 hex
    sampled: bool

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"


def parse_traceparent(value) -> TraceContext:
    """The context a traceparent carries; ValueError when it is not one. Versions after 00 are
    read as 00 (the W3C rule for a version this side does not know), ff is invalid."""
    if not isinstance(value, str):
        raise ValueError(TRACEPARENT_RULE)
    match = _TRACEPARENT.fullmatch(value.strip().lower())
    if match is None:
        raise ValueError(TRACEPARENT_RULE)
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        raise ValueError(TRACEPARENT_RULE)
    if trace_id == "0" * 32 or span_id == "0" * 16:
        raise ValueError("a traceparent's trace id and span id may not be all zeros")
    return TraceContext(trace_id=trace_id, span_id=span_id, sampled=bool(int(flags, 16) & 1))


def clean_traceparent(value) -> str:
    """The traceparent as stored (version 00, lower case)."""
    return parse_traceparent(value).traceparent if value else ""


def trace_id_of(label: str) -> str:
    """The trace id of a callback labelled `label` (its trace_id): the label itself when it is a trace
    id, else one derived from it."""
    lowered = label.lower()
    if _TRACE_ID.fullmatch(lowered) and lowered != "0" * 32:
        return lowered
    return hashlib.sha256(label.encode()).hexdigest()[:32]


def conflict(*, trace_id: str, traceparent: str) -> str | None:
    """Why a callback's trace_id and traceparent (both given, both valid) disagree, or None."""
    if trace_id and traceparent and trace_id_of(trace_id) != parse_traceparent(traceparent).trace_id:
        return "must be the traceparent's trace id when both are given (or leave it out)"
    return None


def from_header(value: str | None) -> str:
    """The caller's traceparent from a request header, normalised; "" when absent or not valid (a
    header is not a field to refuse: the callback then starts a trace of its own)."""
    try:
        return clean_traceparent(value)
    except ValueError:
        return ""


def with_caller_context(data: dict, traceparent: str) -> dict:
    """A callback's fields with the caller's `traceparent` (from_header) where it gives none of its own;
    not where its trace_id names another trace: the caller's own label wins."""
    if not traceparent or data.get("traceparent"):
        return data
    if data.get("trace_id") and trace_id_of(data["trace_id"]) != parse_traceparent(traceparent).trace_id:
        return data
    return {**data, "traceparent": traceparent}
