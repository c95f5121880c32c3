"""W3C trace context: the caller's ``traceparent`` in, the span's ``traceparent`` out.

OpenTelemetry's own ``TraceContextTextMapPropagator`` parses and writes the headers
(``traceparent`` and ``tracestate``), so a malformed header is ignored exactly as every
other OpenTelemetry service ignores it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from opentelemetry.context import Context
from opentelemetry.trace import Span, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["TRACE_HEADERS", "parent_context", "trace_context_of", "trace_headers"]

#: The request headers that carry trace context: replaced by the span's own when sent on.
TRACE_HEADERS: Final = frozenset({"traceparent", "tracestate"})
_TRACEPARENT: Final = b"traceparent"
_TRACESTATE: Final = b"tracestate"
_TRACEPARENT_LENGTH: Final = len(_TRACEPARENT)
_TRACESTATE_LENGTH: Final = len(_TRACESTATE)

_propagator: Final = TraceContextTextMapPropagator()


def trace_context_of(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """The ``traceparent`` and ``tracestate`` of raw request headers, the first of each.

    The one reader of both doors: names are compared case-insensitively, since httpx keeps
    a header's name as the client wrote it (``Traceparent``) where ASGI lower-cases it.
    """
    traceparent = tracestate = None
    for name, value in headers:
        if len(name) == _TRACEPARENT_LENGTH:
            if traceparent is None and name.lower() == _TRACEPARENT:
                traceparent = value.decode("latin-1")
        elif len(name) == _TRACESTATE_LENGTH and tracestate is None and name.lower() == _TRACESTATE:
            tracestate = value.decode("latin-1")
    return traceparent, tracestate


def parent_context(traceparent: str | None, tracestate: str | None = None) -> Context | None:
    """The context a request's span starts in; None means the current one.

    When the application already has a span open (its own OpenTelemetry instrumentation
    around ours, which has read the same header), that span is the better parent. Otherwise
    the caller's ``traceparent`` makes the span a child of the caller's trace; without one
    (or with a malformed one) the span starts a trace of its own.
    """
    if traceparent is None or get_current_span().get_span_context().is_valid:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate is not None:
        carrier["tracestate"] = tracestate
    return _propagator.extract(carrier)


def trace_headers(span: Span) -> dict[str, str]:
    """The headers that make the upstream's work a child of ``span``.

    Written from the span's context in the W3C format directly: the propagator's
    ``inject`` builds a context object per call and costs several times as much.
    """
    context = span.get_span_context()
    headers = {
        "traceparent": f"00-{context.trace_id:032x}-{context.span_id:016x}-"
        f"{context.trace_flags:02x}"
    }
    if context.trace_state:
        headers["tracestate"] = context.trace_state.to_header()
    return headers
