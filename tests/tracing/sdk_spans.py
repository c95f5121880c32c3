"""Our span records as OpenTelemetry's SDK holds spans: what its own exporter would encode.

``readable_span`` builds, from a record's values, the ``ReadableSpan`` the SDK would have
ended for the same request; the memory exporter hands tests these (so assertions read as
against any SDK span), and the conformance test encodes them with the SDK's OTLP encoder to
compare with what our encoder wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from prompt_middleware.tracing import SpanRecord
from prompt_middleware.tracing.record import AttributeValue

EMPTY_RESOURCE = Resource({})


def readable_span(
    record: SpanRecord,
    resource: Resource = EMPTY_RESOURCE,
    scope: InstrumentationScope | None = None,
) -> ReadableSpan:
    trace_state = TraceState.from_header([record.trace_state]) if record.trace_state else None
    context = SpanContext(
        record.trace_id,
        record.span_id,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=trace_state,
    )
    parent = None
    if record.parent_span_id:
        parent = SpanContext(
            record.trace_id, record.parent_span_id, is_remote=record.parent_is_remote
        )
    status = (
        Status(StatusCode.ERROR, record.status_message)
        if record.error
        else Status(StatusCode.UNSET)
    )
    return ReadableSpan(
        name=record.name,
        context=context,
        parent=parent,
        resource=resource,
        attributes={**record.attributes, **(record.linked or {})},
        kind=SpanKind.CLIENT,
        status=status,
        start_time=record.start_ns,
        end_time=record.end_ns,
        instrumentation_scope=scope,
    )


def sdk_resource(attributes: Mapping[str, AttributeValue]) -> Resource:
    return Resource(dict(attributes))


class MemoryExporter:
    """Keeps every batch, as records and as the SDK's spans."""

    def __init__(self) -> None:
        self.records: list[SpanRecord] = []
        self.batches: list[list[SpanRecord]] = []

    def export(self, spans: Sequence[SpanRecord], timeout_seconds: float) -> bool:
        self.batches.append(list(spans))
        self.records.extend(spans)
        return True

    def shutdown(self) -> None:
        pass

    def get_finished_spans(self) -> tuple[ReadableSpan, ...]:
        return tuple(readable_span(record) for record in self.records)
