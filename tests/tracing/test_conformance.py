"""Our OTLP encoders against OpenTelemetry's own: the same spans, the same request.

Each case runs a request's span through ``Tracing`` (a JSON answer, a stream, an upstream
error, our error before anything was sent; a root span and a caller's child), takes the
records the batch export received, and encodes them three ways: our OTLP/JSON (parsed back as
a collector parses it: hex ids to bytes, ``json_format.Parse`` with unknown fields refused),
our protobuf, and the SDK's own exporter encoding (``encode_spans``) of the ``ReadableSpan``
the SDK would have ended with the same values. All three must be the same
``ExportTraceServiceRequest``, span by span and attribute by attribute.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable

import pytest
from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from prompt_middleware.answer_watch import AnswerWatch, watched_send
from prompt_middleware.errors import PromptNotFound
from prompt_middleware.request import decode_body
from prompt_middleware.tracing import PromptLink, SpanRecord
from prompt_middleware.tracing.otlp_json import JsonEncoder
from prompt_middleware.tracing.otlp_protobuf import ProtobufEncoder
from prompt_middleware.tracing.record import AttributeValue
from prompt_middleware.tracing.setup import INSTRUMENTATION_NAME, resource_of
from tests.fakes.otlp import parse_json_export
from tests.tracing.conftest import MemoryTracing
from tests.tracing.sdk_spans import readable_span, sdk_resource
from tests.tracing.test_answer import COMPLETION, STREAM

BODY = (
    b'{"model":"gpt-4o",'
    b'"messages":[{"role":"user","content":"Gr\\u00fc\\u00df dich \\ud83d\\ude00"}],'
    b'"temperature":0.2,"max_tokens":300,"top_p":1,"stop":["\\n\\n","END"],"seed":7,'
    b'"stream":false,"user":"user-7"}'
)
LANGFUSE = PromptLink(
    name="support/answer", version=3, store="langfuse", cache="hit", label="prod", variant="b"
)
FOLDER = PromptLink(name="support/answer", version="2", store="file", cache="miss")
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
ENVIRONMENT = {
    "OTEL_SERVICE_NAME": "conformance",
    "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,service.version=1.2",
}


async def _answer(memory: MemoryTracing, status: int, content_type: bytes, body: bytes) -> None:
    span = memory.tracing.start(
        decode_body(BODY),
        prompt=LANGFUSE,
        start_ns=time.time_ns(),
        traceparent=TRACEPARENT,
        tracestate="vendor=1, other=x",
    )

    async def client(message: object) -> None:
        pass

    send = watched_send(client, AnswerWatch(0.0, span))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type)],
        }
    )
    await send({"type": "http.response.body", "body": body[:40], "more_body": True})
    await send({"type": "http.response.body", "body": body[40:], "more_body": False})


async def json_answer(memory: MemoryTracing) -> None:
    await _answer(memory, 200, b"application/json", json.dumps(COMPLETION).encode())


async def stream_answer(memory: MemoryTracing) -> None:
    await _answer(memory, 200, b"text/event-stream", STREAM)


async def upstream_error(memory: MemoryTracing) -> None:
    await _answer(memory, 429, b"application/json", b'{"error": {"message": "slow down"}}')


async def error_before_sending(memory: MemoryTracing) -> None:
    memory.tracing.record_error(
        PromptNotFound("The prompt 'support/x' is not in the folder."),
        started=time.perf_counter(),
        body=b'{"model": "file/gpt-4o", "prompt_id": "support/x", "user": "u-9"}',
    )


async def folder_prompt_root_span(memory: MemoryTracing) -> None:
    span = memory.tracing.start(decode_body(BODY), prompt=FOLDER, start_ns=time.time_ns())
    span.response_start(200, "application/json")
    span.response_chunk(json.dumps(COMPLETION).encode())
    span.end()


CASES: dict[str, Callable[[MemoryTracing], Awaitable[None]]] = {
    "a JSON answer": json_answer,
    "a stream": stream_answer,
    "an upstream error": upstream_error,
    "our error before sending": error_before_sending,
    "a folder prompt, a root span": folder_prompt_root_span,
}


def _sdk_request(records: list[SpanRecord]) -> ExportTraceServiceRequest:
    """What OpenTelemetry's OTLP exporter sends for the spans the SDK would have ended."""
    resource = sdk_resource(resource_of(ENVIRONMENT))
    scope = InstrumentationScope(INSTRUMENTATION_NAME, "0.1.0")
    return encode_spans([readable_span(record, resource, scope) for record in records])


@pytest.mark.parametrize("case", list(CASES))
async def test_our_encodings_equal_the_sdk_exporters(case: str) -> None:
    memory = MemoryTracing()
    try:
        await CASES[case](memory)
        await CASES[case](memory)  # two spans: a batch, as the export sends it
        memory.spans()
    finally:
        await memory.tracing.aclose()
    records = memory.exporter.records
    assert len(records) == 2
    resource = resource_of(ENVIRONMENT)
    expected = _sdk_request(records)

    ours_json = parse_json_export(
        JsonEncoder(resource, INSTRUMENTATION_NAME, "0.1.0").encode(records)
    )
    ours_protobuf = ExportTraceServiceRequest()
    ours_protobuf.ParseFromString(
        ProtobufEncoder(resource, INSTRUMENTATION_NAME, "0.1.0").encode(records)
    )
    for ours in (ours_json, ours_protobuf):
        [ours_spans] = ours.resource_spans
        [sdk_spans] = expected.resource_spans
        assert MessageToDict(ours_spans.resource) == MessageToDict(sdk_spans.resource)
        for mine, theirs in zip(
            ours_spans.scope_spans[0].spans, sdk_spans.scope_spans[0].spans, strict=True
        ):
            assert MessageToDict(mine) == MessageToDict(theirs)  # a readable difference first
        assert ours == expected


def test_every_value_type_and_non_finite_doubles() -> None:
    record = SpanRecord(
        trace_id=1,
        span_id=2,
        parent_span_id=0,
        parent_is_remote=False,
        trace_state="",
        name="chat",
        start_ns=10,
        end_ns=2**63 - 1,
        attributes={
            "s": 'é\u2028"\\',
            "i": -(2**63),
            "b": True,
            "f": 0.1,
            "nan": float("nan"),
            "inf": float("inf"),
            "-inf": float("-inf"),
            "list": ("a", "b"),
            "ints": (1, 2),
        },
        error=True,
        status_message="boom",
    )
    encoded = JsonEncoder({}, "scope", "").encode([record, record])
    theirs = encode_spans(
        [readable_span(record, sdk_resource({}), InstrumentationScope("scope", ""))]
    )
    [resource_spans] = parse_json_export(encoded).resource_spans
    [expected] = theirs.resource_spans
    mine = resource_spans.scope_spans[0].spans
    assert len(mine) == 2
    # NaN is not equal to itself: compare the JSON forms, which spell it alike.
    assert MessageToDict(mine[0]) == MessageToDict(expected.scope_spans[0].spans[0])


def test_spans_sharing_keys_keep_their_values_types() -> None:
    # True == 1 == 1.0 in Python: each must still be encoded as its own type, whatever was
    # encoded before it under the same keys (the spans share one template of them).
    records = [
        SpanRecord(1, 2, 0, False, "", "chat", 1, 2, {"n": value, "s": str(value)})
        for value in (True, 1, 1.0, 1, True)
    ]
    [resource_spans] = parse_json_export(
        JsonEncoder({}, "scope", "").encode(records)
    ).resource_spans
    values = [
        MessageToDict(span.attributes[0].value) for span in resource_spans.scope_spans[0].spans
    ]
    assert values == [
        {"boolValue": True},
        {"intValue": "1"},
        {"doubleValue": 1.0},
        {"intValue": "1"},
        {"boolValue": True},
    ]


def test_a_percent_sign_in_a_key_or_a_value_is_written_as_it_is() -> None:
    # The keys' template is filled with ``%``: a key's own "%" must not be read as a slot.
    attributes: dict[str, AttributeValue] = {"rate%d": "100%s", "%": 5, "%%b": ("%b",)}
    records = [SpanRecord(1, 2, 0, False, "", "chat", 1, 2, dict(attributes)) for _ in range(2)]
    [resource_spans] = parse_json_export(
        JsonEncoder({"service.name": "50%"}, "scope", "").encode(records)
    ).resource_spans
    assert [
        (pair.key, MessageToDict(pair.value)) for pair in resource_spans.resource.attributes
    ] == [("service.name", {"stringValue": "50%"})]
    for span in resource_spans.scope_spans[0].spans:
        assert [(pair.key, MessageToDict(pair.value)) for pair in span.attributes] == [
            ("rate%d", {"stringValue": "100%s"}),
            ("%", {"intValue": "5"}),
            ("%%b", {"arrayValue": {"values": [{"stringValue": "%b"}]}}),
        ]
