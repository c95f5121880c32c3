"""What one request's span is once it has ended: a plain record, encoded on the export side.

Nothing of OpenTelemetry's SDK: the door fills a :class:`SpanRecord` in a few microseconds and
the exporter's thread turns batches of them into OTLP (``otlp_json``, ``otlp_protobuf``).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

__all__ = ["AttributeValue", "Attributes", "SpanRecord"]

AttributeValue = str | bool | int | float | Sequence[str] | Sequence[int] | Sequence[float]
Attributes = dict[str, AttributeValue]


class SpanRecord(msgspec.Struct, gc=False):
    """One ended span, as OTLP carries it. Every span is a ``CLIENT`` span of the GenAI call.

    ``parent_span_id`` is 0 for a root span; ``parent_is_remote`` says the parent came from
    an incoming ``traceparent`` (not the host application's own open span). ``error`` marks
    the status ERROR, with ``status_message``; otherwise the status is unset. ``linked`` holds
    the attributes that link the span to its prompt version, after ``attributes``: one mapping
    shared by every span of that version (never changed), which the encoder writes once.
    """

    trace_id: int
    span_id: int
    parent_span_id: int
    parent_is_remote: bool
    trace_state: str
    name: str
    start_ns: int
    end_ns: int
    attributes: Attributes
    error: bool = False
    status_message: str = ""
    linked: Attributes | None = None
