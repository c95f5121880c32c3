"""Batches of span records as OTLP/HTTP JSON: an ``ExportTraceServiceRequest`` body.

The OTLP specification's JSON encoding of protobuf: lowerCamelCase field names, trace and span
ids as hex strings (not base64), 64-bit integers as decimal strings, enums as integers. The
resource and the instrumentation scope are encoded once, when the encoder is made, and each
batch is written between them. A span is written straight as bytes: its fixed fields through
one template, its attributes through a template of their keys (spans of one kind share it),
strings through msgspec's encoder (which escapes them), and its prompt version's shared
attributes from the encoding kept of them; no dictionary is built per span.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final

import msgspec

from prompt_middleware.tracing.record import AttributeValue, SpanRecord

__all__ = ["JSON_CONTENT_TYPE", "JsonEncoder"]

JSON_CONTENT_TYPE: Final = "application/json"
CLIENT_KIND: Final = 3  # SPAN_KIND_CLIENT
ERROR_CODE: Final = 2  # STATUS_CODE_ERROR
#: ``Span.flags``: whether the parent is remote is known (bit 8), and is it (bit 9).
FLAGS_LOCAL_PARENT: Final = 0x100
FLAGS_REMOTE_PARENT: Final = 0x300

_encode: Final = msgspec.json.Encoder().encode
_SPAN: Final = (
    b'{"traceId":"%032x","spanId":"%016x",%b"name":%b,"kind":'
    + str(CLIENT_KIND).encode()
    + b',"startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":[%b],"status":%b,'
    b'"flags":%d}'
)
_UNSET_STATUS: Final = b"{}"
_ERROR_STATUS: Final = b'{"code":' + str(ERROR_CODE).encode() + b',"message":%b}'
#: The ``KeyValue`` list's template of each sequence of keys, every value a ``%b``: spans of
#: one kind share their keys, so a span's attributes cost one lookup and its values' encoding.
#: Shared by the export threads (a dict's get and set are atomic under the interpreter lock),
#: a bounded number of them.
_MOST_KEPT: Final = 4096
_templates: dict[tuple[str, ...], bytes] = {}
#: The encoded pairs of each prompt version's shared attributes, by the mapping's identity (the
#: mapping is kept beside them, so its id cannot be another's while the entry lives).
_linked_pairs: dict[int, tuple[Mapping[str, AttributeValue], bytes]] = {}


class JsonEncoder:
    """Encodes batches for one resource and scope (both fixed for the process)."""

    content_type = JSON_CONTENT_TYPE

    def __init__(
        self, resource: Mapping[str, AttributeValue], scope_name: str, scope_version: str
    ) -> None:
        resource_json = b'{"attributes":[' + attributes_json(resource) + b"]}"
        scope_json = _encode({"name": scope_name, "version": scope_version})
        self._head = (
            (b'{"resourceSpans":[{"resource":' + resource_json + b',"scopeSpans":[{"scope":')
            + scope_json
            + b',"spans":['
        )
        self._tail = b"]}]}]}"
        # One buffer for every batch, written in place: a batch is a megabyte or so, and a new
        # one each time costs more in fresh memory pages than the encoding itself.
        self._buffer = bytearray()

    def encode(self, records: Sequence[SpanRecord]) -> bytearray:
        """The body of one export. The same buffer is returned every time: send it before
        encoding the next batch (the export thread does)."""
        buffer = self._buffer
        buffer[:] = self._head
        for record in records:
            buffer += span_json(record)
            buffer += b","
        if records:
            del buffer[-1]  # the last comma
        buffer += self._tail
        return buffer


def span_json(record: SpanRecord) -> bytes:
    """One span as OTLP/JSON's ``Span`` object."""
    parent = b'"parentSpanId":"%016x",' % record.parent_span_id if record.parent_span_id else b""
    if record.trace_state:
        parent += b'"traceState":' + _encode(record.trace_state) + b","
    return _SPAN % (
        record.trace_id,
        record.span_id,
        parent,
        _encode(record.name),
        record.start_ns,
        record.end_ns,
        _all_attributes_json(record),
        _ERROR_STATUS % _encode(record.status_message) if record.error else _UNSET_STATUS,
        FLAGS_REMOTE_PARENT if record.parent_is_remote else FLAGS_LOCAL_PARENT,
    )


def _all_attributes_json(record: SpanRecord) -> bytes:
    """The span's own attributes, then its prompt version's, encoded once per version."""
    own = attributes_json(record.attributes)
    linked = record.linked
    if not linked:
        return own
    kept = _linked_pairs.get(id(linked))
    if kept is None:
        if len(_linked_pairs) >= _MOST_KEPT:
            _linked_pairs.clear()
        kept = _linked_pairs[id(linked)] = (linked, attributes_json(linked))
    return own + b"," + kept[1] if own else kept[1]


def attributes_json(values: Mapping[str, AttributeValue]) -> bytes:
    """OTLP/JSON's ``KeyValue`` list, without its brackets: the keys' template (made once per
    sequence of keys) filled with the values, most of them strings encoded in place."""
    keys = tuple(values)
    template = _templates.get(keys)
    if template is None:
        template = _template(keys)
    # A string, most values, is value_json's first case written in place: no call per value.
    return template % tuple(
        [
            b'{"stringValue":' + _encode(value) + b"}" if type(value) is str else value_json(value)
            for value in values.values()
        ]
    )


def _template(keys: tuple[str, ...]) -> bytes:
    """``{"key":<key>,"value":%b}`` for each key, a ``%`` in a key escaped."""
    template = b",".join(
        [b'{"key":' + _encode(key).replace(b"%", b"%%") + b',"value":%b}' for key in keys]
    )
    if len(_templates) >= _MOST_KEPT:
        _templates.clear()  # bounded: a flood of distinct key sets starts afresh
    _templates[keys] = template
    return template


def value_json(value: AttributeValue) -> bytes:
    """An attribute value as OTLP/JSON's ``AnyValue``."""
    kind = type(value)  # the exact type first: the usual values, at the least cost
    if kind is str:
        return b'{"stringValue":' + _encode(value) + b"}"
    if kind is int:
        return b'{"intValue":"%d"}' % value  # type: ignore[str-format]  # int64: a decimal string
    if kind is bool:
        return b'{"boolValue":true}' if value else b'{"boolValue":false}'
    if kind is float:
        return b'{"doubleValue":' + _encode(_double(value)) + b"}"  # type: ignore[arg-type]
    if isinstance(value, bool):
        return value_json(bool(value))
    if isinstance(value, str):
        return value_json(str(value))
    if isinstance(value, int):
        return value_json(int(value))
    if isinstance(value, float):
        return value_json(float(value))
    items = b",".join([value_json(item) for item in value])
    return b'{"arrayValue":{"values":[' + items + b"]}}"


def _double(value: float) -> float | str:
    # JSON has no NaN or infinity: protobuf's JSON mapping writes them as these strings.
    if math.isfinite(value):
        return value
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"
