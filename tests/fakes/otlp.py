"""A small OTLP/HTTP trace receiver: ``POST /v1/traces`` with an ``ExportTraceServiceRequest``.

As a real collector does, it accepts both OTLP/HTTP encodings — binary protobuf
(``application/x-protobuf``) and JSON (``application/json``), gzip or deflate bodies included.
A JSON body is read as the OTLP specification says a receiver reads it: its hex trace and span
ids turned to bytes, then protobuf's own ``json_format.Parse`` into ``opentelemetry-proto``'s
``ExportTraceServiceRequest`` with unknown fields refused — so every body a test captures is
checked against the schema. Spans become :class:`ReceivedSpan` records with plain-Python
attribute values. :func:`decode_export` is shared with the fake Langfuse's OpenTelemetry
endpoint; a body it cannot decode is answered 400, as a collector answers it.

Knobs: ``mode`` — ``"ok"``, ``"refuse"`` (answer 500) or ``"hang"`` (never answer, until
:meth:`FakeCollector.release` or the end of :meth:`FakeCollector.serve`); ``basic_auth`` —
``(public_key, secret_key)`` to require (401 otherwise); ``unavailable`` — statuses to answer
the next requests with first, one each (``Retry-After: 0``), as a collector under load does.
Every export is kept in ``exports``.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from google.protobuf import json_format  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from starlette.types import Receive, Scope, Send

from tests.fakes.server import serve_in_background

__all__ = [
    "FakeCollector",
    "ReceivedExport",
    "ReceivedSpan",
    "basic_auth_header",
    "decode_export",
    "parse_json_export",
]

TRACES_PATH = "/v1/traces"
_HANG_DETECTOR_SECONDS = 60
_PROTOBUF = b"application/x-protobuf"


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root span
    kind: int  # the protobuf enum: 3 is CLIENT
    status_code: int  # 0 unset, 1 ok, 2 error
    status_message: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class ReceivedExport:
    headers: dict[str, str]
    spans: list[ReceivedSpan]
    request: ExportTraceServiceRequest
    body: bytes  # as it arrived, compressed or not


_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def parse_json_export(body: bytes | bytearray) -> ExportTraceServiceRequest:
    """An OTLP/JSON body as protobuf: hex ids to base64 (protobuf's JSON mapping of bytes),
    then ``json_format.Parse`` with no unknown field allowed."""
    document = json.loads(body)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for name in _ID_FIELDS:
                    if name in span:
                        span[name] = base64.b64encode(bytes.fromhex(span[name])).decode()
    request = ExportTraceServiceRequest()
    json_format.Parse(json.dumps(document), request, ignore_unknown_fields=False)
    return request


def parse_export(
    body: bytes, content_type: str | None, content_encoding: str | None = None
) -> ExportTraceServiceRequest:
    """One ``ExportTraceServiceRequest`` body, in either encoding, decompressed."""
    if content_encoding == "gzip":
        body = gzip.decompress(body)
    elif content_encoding == "deflate":
        body = zlib.decompress(body)
    if content_type is not None and content_type.startswith("application/json"):
        return parse_json_export(body)
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return request


def decode_export(
    body: bytes, content_encoding: str | None = None, content_type: str | None = None
) -> list[ReceivedSpan]:
    """The spans of one ``ExportTraceServiceRequest`` body."""
    return spans_of(parse_export(body, content_type, content_encoding))


def spans_of(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        kind=span.kind,
                        status_code=span.status.code,
                        status_message=span.status.message,
                        attributes=_attributes(span.attributes),
                        resource=resource,
                        scope=scope_spans.scope.name,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                    )
                )
    return spans


def basic_auth_header(public_key: str, secret_key: str) -> str:
    return "Basic " + base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()


def _attributes(pairs: Any) -> dict[str, Any]:
    items: list[KeyValue] = list(pairs)
    return {pair.key: _value(pair.value) for pair in items}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    if kind is None:
        return None
    return getattr(value, kind)


@dataclass
class FakeCollector:
    mode: Literal["ok", "refuse", "hang"] = "ok"
    basic_auth: tuple[str, str] | None = None
    path: str = TRACES_PATH
    exports: list[ReceivedExport] = field(default_factory=list)
    #: Requests refused: 401 (bad auth), 500 (``refuse``), 404 (another path), 400 (a body
    #: that does not decode; why is in ``unreadable``).
    refused: list[int] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    unavailable: list[int] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _gate: asyncio.Event = field(default_factory=asyncio.Event)
    _hanging: int = 0

    @property
    def spans(self) -> list[ReceivedSpan]:
        return [span for export in self.exports for span in export.spans]

    @property
    def hanging(self) -> int:
        return self._hanging

    def release(self) -> None:
        """Answer (200) every request held by ``hang``, and every later one at once."""
        self._gate.set()

    async def wait_for_spans(self, count: int) -> list[ReceivedSpan]:
        """Return once ``count`` spans have arrived (a hang detector fails a test whose spans
        never come, rather than hanging it)."""
        async with asyncio.timeout(_HANG_DETECTOR_SECONDS), self._changed:
            await self._changed.wait_for(lambda: len(self.spans) >= count)
        return self.spans

    async def wait_for_hanging(self, count: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._hanging >= count)

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Serve on 127.0.0.1; yield the base URL (``+ /v1/traces`` is the endpoint)."""
        async with serve_in_background(self) as base_url:
            try:
                yield base_url
            finally:
                self.release()  # a hanging request must not hold up the server's shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = await _read(receive)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        status = self._refusal(scope, headers)
        if status is None and self.unavailable:
            status = self.unavailable.pop(0)
            self.refused.append(status)
            await _answer(send, status, b"", [(b"retry-after", b"0")])
            return
        if status is None and self.mode == "hang" and not self._gate.is_set():
            await self._hang()
        if status is None:
            try:
                request = parse_export(
                    body, headers.get("content-type"), headers.get("content-encoding")
                )
            except Exception as exc:  # a collector answers an unreadable body with 400
                self.unreadable.append(repr(exc))
                status = 400
        if status is None:
            async with self._changed:
                self.exports.append(ReceivedExport(headers, spans_of(request), request, body))
                self._changed.notify_all()
            await _answer(send, 200, ExportTraceServiceResponse().SerializeToString())
            return
        self.refused.append(status)
        await _answer(send, status, b"")

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> int | None:
        if scope["path"] != self.path or scope["method"] != "POST":
            return 404
        if self.basic_auth is not None and headers.get("authorization") != basic_auth_header(
            *self.basic_auth
        ):
            return 401
        return 500 if self.mode == "refuse" else None

    async def _hang(self) -> None:
        async with self._changed:
            self._hanging += 1
            self._changed.notify_all()
        try:
            await self._gate.wait()
        finally:
            async with self._changed:
                self._hanging -= 1
                self._changed.notify_all()


async def _read(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", _PROTOBUF),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
