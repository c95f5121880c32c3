"""Batches of span records as OTLP/HTTP JSON: an ``ExportTraceServiceRequest`` body.

The OTLP specification's JSON encoding of protobuf: lowerCamelCase field names, trace and span
ids as hex strings (not base64), 64-bit integers as decimal strings, enums as integers. The
resource and the instrumentation scope are encoded once, when the encoder is made, and each
batch is written between them; a span costs a few dictionaries and msgspec's encoder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from prompt_middleware.tracing.record import AttributeValue, SpanRecord

__all__ = ["JSON_CONTENT_TYPE", "JsonEncoder", "any_value"]

JSON_CONTENT_TYPE: Final = "application/json"
CLIENT_KIND: Final = 3  # SPAN_KIND_CLIENT
ERROR_CODE: Final = 2  # STATUS_CODE_ERROR
#: ``Span.flags``: whether the parent is remote is known (bit 8), and is it (bit 9).
FLAGS_LOCAL_PARENT: Final = 0x100
FLAGS_REMOTE_PARENT: Final = 0x300

_encode: Final = msgspec.json.Encoder().encode
_UNSET_STATUS: Final[dict[str, Any]] = {}
#: Attribute pairs kept encoded, shared by the export threads (a dict's get and set are
#: atomic under the interpreter lock): short values, a bounded number of them.
_LONGEST_KEPT: Final = 128
_MOST_KEPT: Final = 4096
#: Values new with every answer: kept, they would only push the others out.
_UNIQUE: Final = frozenset(
    {"gen_ai.response.id", "langfuse.observation.input", "langfuse.observation.output"}
)
_known_pairs: dict[tuple[str, AttributeValue], msgspec.Raw] = {}
_known_numbers: dict[tuple[str, type, AttributeValue], msgspec.Raw] = {}


class JsonEncoder:
    """Encodes batches for one resource and scope (both fixed for the process)."""

    content_type = JSON_CONTENT_TYPE

    def __init__(
        self, resource: Mapping[str, AttributeValue], scope_name: str, scope_version: str
    ) -> None:
        resource_json = _encode({"attributes": attributes(resource)})
        scope_json = _encode({"name": scope_name, "version": scope_version})
        self._head = (
            (b'{"resourceSpans":[{"resource":' + resource_json + b',"scopeSpans":[{"scope":')
            + scope_json
            + b',"spans":'
        )
        self._tail = b"}]}]}"
        self._encoder = msgspec.json.Encoder()
        # One buffer for every batch, written in place: a batch is a megabyte or so, and a new
        # one each time costs more in fresh memory pages than the encoding itself.
        self._buffer = bytearray()

    def encode(self, records: Sequence[SpanRecord]) -> bytearray:
        """The body of one export. The same buffer is returned every time: send it before
        encoding the next batch (the export thread does)."""
        buffer = self._buffer
        head = self._head
        buffer[:] = head
        self._encoder.encode_into([span(record) for record in records], buffer, len(head))
        buffer += self._tail
        return buffer


def span(record: SpanRecord) -> dict[str, Any]:
    """One span as OTLP/JSON's ``Span`` object."""
    encoded: dict[str, Any] = {
        "traceId": f"{record.trace_id:032x}",
        "spanId": f"{record.span_id:016x}",
        "name": record.name,
        "kind": CLIENT_KIND,
        "startTimeUnixNano": str(record.start_ns),
        "endTimeUnixNano": str(record.end_ns),
        "attributes": attributes(record.attributes),
        "status": (
            {"code": ERROR_CODE, "message": record.status_message}
            if record.error
            else _UNSET_STATUS
        ),
        "flags": FLAGS_REMOTE_PARENT if record.parent_is_remote else FLAGS_LOCAL_PARENT,
    }
    if record.parent_span_id:
        encoded["parentSpanId"] = f"{record.parent_span_id:016x}"
    if record.trace_state:
        encoded["traceState"] = record.trace_state
    return encoded


def attributes(values: Mapping[str, AttributeValue]) -> list[Any]:
    """OTLP/JSON's ``KeyValue`` list. Most pairs repeat from span to span (the operation,
    the model, the prompt's name, version, store and label, the user): each is encoded once
    and kept as raw JSON, so a batch of similar spans costs a lookup per pair."""
    known = _known_pairs
    return [
        (known.get(item) or _pair(item))
        if type(item[1]) is str and item[0] not in _UNIQUE
        else _pair(item)
        for item in values.items()
    ]


def _pair(item: tuple[str, AttributeValue]) -> Any:
    """One ``KeyValue``: kept encoded when it is likely to repeat."""
    key, value = item
    kind = type(value)
    if kind is str:
        if key in _UNIQUE or len(value) > _LONGEST_KEPT:  # type: ignore[arg-type]
            return {"key": key, "value": {"stringValue": value}}
        # Only strings are kept under (key, value): a number never equals a string, where
        # True == 1 == 1.0 would find one another's encoding.
        return _keep(_known_pairs, item)
    if kind is int or kind is float or kind is bool:
        typed = (key, kind, value)
        return _known_numbers.get(typed) or _keep(_known_numbers, typed)
    return {"key": key, "value": any_value(value)}


def _keep(kept: dict[Any, msgspec.Raw], cache_key: tuple[Any, ...]) -> msgspec.Raw:
    pair = msgspec.Raw(_encode({"key": cache_key[0], "value": any_value(cache_key[-1])}))
    if len(kept) >= _MOST_KEPT:
        kept.clear()  # bounded: a flood of distinct values starts afresh
    kept[cache_key] = pair
    return pair


def any_value(value: AttributeValue) -> dict[str, Any]:
    """An attribute value as OTLP/JSON's ``AnyValue``."""
    kind = type(value)  # the exact type first: the usual values, at the least cost
    if kind is str:
        return {"stringValue": value}
    if kind is int:
        return {"intValue": str(value)}  # int64: a decimal string
    if kind is bool:
        return {"boolValue": value}
    if kind is float:
        return {"doubleValue": _double(value)}  # type: ignore[arg-type]
    if isinstance(value, bool):
        return {"boolValue": bool(value)}
    if isinstance(value, str):
        return {"stringValue": str(value)}
    if isinstance(value, int):
        return {"intValue": str(int(value))}
    if isinstance(value, float):
        return {"doubleValue": _double(float(value))}
    return {"arrayValue": {"values": [any_value(item) for item in value]}}


def _double(value: float) -> float | str:
    # JSON has no NaN or infinity: protobuf's JSON mapping writes them as these strings.
    if math.isfinite(value):
        return value
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"
