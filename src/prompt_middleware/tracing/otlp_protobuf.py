"""Batches of span records as OTLP/HTTP protobuf (``OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf``).

The same ``ExportTraceServiceRequest`` as ``otlp_json`` writes, built with
``opentelemetry-proto``'s generated classes, in the exporter's thread. It costs several times
the JSON encoding (README, "Traces"): chosen only by the variable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from prompt_middleware.errors import ConfigurationError
from prompt_middleware.tracing.otlp_json import FLAGS_LOCAL_PARENT, FLAGS_REMOTE_PARENT
from prompt_middleware.tracing.record import AttributeValue, SpanRecord

__all__ = ["PROTOBUF_CONTENT_TYPE", "ProtobufEncoder"]

PROTOBUF_CONTENT_TYPE: Final = "application/x-protobuf"


class ProtobufEncoder:
    """Encodes batches for one resource and scope; needs ``opentelemetry-proto``."""

    content_type = PROTOBUF_CONTENT_TYPE

    def __init__(
        self, resource: Mapping[str, AttributeValue], scope_name: str, scope_version: str
    ) -> None:
        try:
            from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
            from opentelemetry.proto.common.v1 import common_pb2
            from opentelemetry.proto.resource.v1 import resource_pb2
            from opentelemetry.proto.trace.v1 import trace_pb2
        except ImportError:
            raise ConfigurationError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf needs opentelemetry-proto: install "
                "prompt-middleware[protobuf], or leave the protocol at http/json."
            ) from None
        self._request = trace_service_pb2.ExportTraceServiceRequest
        self._common = common_pb2
        self._trace = trace_pb2
        self._resource = resource_pb2.Resource(attributes=self._attributes(resource))
        self._scope = common_pb2.InstrumentationScope(name=scope_name, version=scope_version)

    def encode(self, records: Sequence[SpanRecord]) -> bytes:
        trace = self._trace
        spans = [self._span(record) for record in records]
        scope_spans = trace.ScopeSpans(scope=self._scope, spans=spans)
        resource_spans = trace.ResourceSpans(resource=self._resource, scope_spans=[scope_spans])
        request = self._request(resource_spans=[resource_spans])
        return bytes(request.SerializeToString())

    def _span(self, record: SpanRecord) -> Any:
        status = self._trace.Status()
        if record.error:
            status.code = self._trace.Status.STATUS_CODE_ERROR
            status.message = record.status_message
        return self._trace.Span(
            trace_id=record.trace_id.to_bytes(16, "big"),
            span_id=record.span_id.to_bytes(8, "big"),
            parent_span_id=(
                record.parent_span_id.to_bytes(8, "big") if record.parent_span_id else b""
            ),
            trace_state=record.trace_state,
            name=record.name,
            kind=self._trace.Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=record.start_ns,
            end_time_unix_nano=record.end_ns,
            attributes=self._attributes(record.attributes) + self._attributes(record.linked or {}),
            status=status,
            flags=FLAGS_REMOTE_PARENT if record.parent_is_remote else FLAGS_LOCAL_PARENT,
        )

    def _attributes(self, values: Mapping[str, AttributeValue]) -> list[Any]:
        key_value = self._common.KeyValue
        return [key_value(key=key, value=self._value(value)) for key, value in values.items()]

    def _value(self, value: AttributeValue) -> Any:
        any_value = self._common.AnyValue
        if isinstance(value, bool):
            return any_value(bool_value=value)
        if isinstance(value, str):
            return any_value(string_value=value)
        if isinstance(value, int):
            return any_value(int_value=value)
        if isinstance(value, float):
            return any_value(double_value=value)
        items = [self._value(item) for item in value]
        return any_value(array_value=self._common.ArrayValue(values=items))
