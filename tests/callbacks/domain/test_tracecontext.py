"""A callback's W3C trace context (callbacks/domain/tracecontext.py): parsing, the trace of a free-form
trace_id, agreement between trace_id and traceparent, and the caller's header."""

import pytest

from callbacks.domain import tracecontext

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


def test_a_traceparent_is_parsed_and_normalised():
    context = tracecontext.parse_traceparent(PARENT.upper())
    assert (context.trace_id, context.span_id, context.sampled) == (TRACE, "00f067aa0ba902b7", True)
    assert tracecontext.clean_traceparent(f" {PARENT.upper()} ") == PARENT
    # A later version is read as 00, with what follows the four fields left out.
    assert tracecontext.clean_traceparent(f"01-{TRACE}-00f067aa0ba902b7-00-more") == PARENT[:-2] + "00"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "nonsense",
        f"ff-{TRACE}-00f067aa0ba902b7-01",
        f"00-{TRACE}-00f067aa0ba902b7-01-extra",
        f"00-{'0' * 32}-00f067aa0ba902b7-01",
        f"00-{TRACE}-{'0' * 16}-01",
        f"00-{TRACE[:-1]}-00f067aa0ba902b7-01",
        42,
    ],
)
def test_what_is_not_a_traceparent_is_refused(value):
    with pytest.raises(ValueError):
        tracecontext.parse_traceparent(value)


def test_a_trace_id_is_its_own_trace_and_a_label_always_gives_the_same_one():
    assert tracecontext.trace_id_of(TRACE.upper()) == TRACE
    derived = tracecontext.trace_id_of("order-42")
    assert len(derived) == 32 and derived == tracecontext.trace_id_of("order-42") != TRACE
    assert tracecontext.trace_id_of("0" * 32) != "0" * 32  # not a valid trace id: derived


def test_trace_id_and_traceparent_must_name_one_trace():
    assert tracecontext.conflict(trace_id=TRACE, traceparent=PARENT) is None
    assert tracecontext.conflict(trace_id="", traceparent=PARENT) is None
    assert "traceparent" in tracecontext.conflict(trace_id="order-42", traceparent=PARENT)


def test_the_callers_header_fills_in_only_where_the_callback_says_nothing_else():
    assert tracecontext.from_header("garbage") == ""
    header = tracecontext.from_header(PARENT)
    assert tracecontext.with_caller_context({"url": "u"}, header)["traceparent"] == PARENT
    assert tracecontext.with_caller_context({"trace_id": TRACE}, header)["traceparent"] == PARENT
    own = f"00-{'a' * 32}-{'b' * 16}-01"
    assert tracecontext.with_caller_context({"traceparent": own}, header)["traceparent"] == own
    assert "traceparent" not in tracecontext.with_caller_context({"trace_id": "order-42"}, header)
    assert "traceparent" not in tracecontext.with_caller_context({"url": "u"}, "")
