"""Batches of span records as OTLP/HTTP JSON: an ``ExportTraceServiceRequest`` body.

The OTLP specification's JSON encoding of protobuf: lowerCamelCase field names, trace and span
ids as hex strings (not base64), 64-bit integers as decimal strings, enums as integers. The
resource and the instrumentation scope are encoded once, when the encoder is made, and each
batch is written between them. A span is written straight as bytes: its fixed fields through
one template, strings through msgspec's encoder (which escapes them), and the attribute pairs
that repeat from span to span (the operation, the model, the prompt, the user) from the
encodings kept of them; no dictionary is built per span.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

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
#: Attribute pairs kept encoded, shared by the export threads (a dict's get and set are
#: atomic under the interpreter lock): short values, a bounded number of them.
_LONGEST_KEPT: Final = 128
_MOST_KEPT: Final = 4096
#: Values new with every answer: kept, they would only push the others out.
_UNIQUE: Final = frozenset(
    {"gen_ai.response.id", "langfuse.observation.input", "langfuse.observation.output"}
)
_known_pairs: dict[tuple[str, AttributeValue], bytes] = {}
_known_numbers: dict[tuple[str, type, AttributeValue], bytes] = {}
_key_heads: dict[str, bytes] = {}
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
    """OTLP/JSON's ``KeyValue`` list, without its brackets. Most pairs repeat from span to
    span: each is encoded once and kept, so a batch of similar spans costs a lookup per pair."""
    known = _known_pairs
    return b",".join(
        [
            (known.get(item) or _pair(item))
            if type(item[1]) is str and item[0] not in _UNIQUE
            else _pair(item)
            for item in values.items()
        ]
    )


def _pair(item: tuple[str, AttributeValue]) -> bytes:
    """One ``KeyValue``: kept encoded when it is likely to repeat."""
    key, value = item
    kind = type(value)
    if kind is str:
        if key in _UNIQUE or len(value) > _LONGEST_KEPT:  # type: ignore[arg-type]
            return _key_head(key) + b'{"stringValue":' + _encode(value) + b"}}"
        # Only strings are kept under (key, value): a number never equals a string, where
        # True == 1 == 1.0 would find one another's encoding.
        return _keep(_known_pairs, item)
    if kind is int or kind is float or kind is bool:
        typed = (key, kind, value)
        return _known_numbers.get(typed) or _keep(_known_numbers, typed)
    return _key_head(key) + value_json(value) + b"}"


def _keep(kept: dict[Any, bytes], cache_key: tuple[Any, ...]) -> bytes:
    key = cache_key[0]
    pair = _key_head(key) + value_json(cache_key[-1]) + b"}"
    if len(kept) >= _MOST_KEPT:
        kept.clear()  # bounded: a flood of distinct values starts afresh
    kept[cache_key] = pair
    return pair


def _key_head(key: str) -> bytes:
    """``{"key":<key>,"value":`` (the keys are a few dozen names)."""
    head = _key_heads.get(key)
    if head is None:
        if len(_key_heads) >= _MOST_KEPT:
            _key_heads.clear()
        head = _key_heads[key] = b'{"key":' + _encode(key) + b',"value":'
    return head


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
