"""One span per request: started at arrival, fed the answer as it passes, ended at the end."""

from __future__ import annotations

import json
import time

import httpx2
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    TraceState,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import Message
from structlog.testing import capture_logs

from prompt_middleware.answer_watch import AnswerWatch, watched_send
from prompt_middleware.cache import CacheStatus
from prompt_middleware.engine import RewriteResult
from prompt_middleware.errors import PromptNotFound
from prompt_middleware.prompts import Prompt
from prompt_middleware.request import decode_body
from prompt_middleware.tracing import GenerationSpan, PromptLink, TracedStream
from prompt_middleware.tracing.answer import StreamAnswerReader
from prompt_middleware.tracing.context import parent_of
from tests.tracing.conftest import MemoryTracing
from tests.tracing.test_answer import COMPLETION, STREAM

BODY = b'{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"temperature":0.2}'
LINK = PromptLink(name="support/answer", version=3, store="langfuse", cache="miss", label="prod")
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


def _start(memory: MemoryTracing, **kwargs: object) -> GenerationSpan:
    return memory.tracing.start(
        decode_body(BODY),
        prompt=LINK,
        start_ns=1_000_000_000,
        **kwargs,  # type: ignore[arg-type]
    )


async def _send_answer(
    span: GenerationSpan, status: int, content_type: bytes, chunks: list[bytes]
) -> list[Message]:
    sent: list[Message] = []

    async def client_send(message: Message) -> None:
        sent.append(message)

    send = watched_send(client_send, AnswerWatch(0.0, span))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type)],
        }
    )
    for index, chunk in enumerate(chunks):
        more = index < len(chunks) - 1
        await send({"type": "http.response.body", "body": chunk, "more_body": more})
    return sent


async def test_a_json_answer_through_send(memory: MemoryTracing) -> None:
    body = json.dumps(COMPLETION).encode()
    span = _start(memory)
    sent = await _send_answer(span, 200, b"application/json", [body[:50], body[50:]])
    assert b"".join(m.get("body", b"") for m in sent) == body  # the client got every byte
    finished = memory.only_span()
    assert finished.name == "chat gpt-4o"
    assert finished.kind is SpanKind.CLIENT
    assert finished.start_time == 1_000_000_000
    assert finished.end_time is not None
    assert finished.end_time > finished.start_time
    assert finished.status.status_code is StatusCode.UNSET
    attributes = dict(finished.attributes or {})
    assert attributes["gen_ai.request.model"] == "gpt-4o"
    assert attributes["gen_ai.request.temperature"] == 0.2
    assert attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert attributes["gen_ai.usage.input_tokens"] == 12
    assert attributes["gen_ai.usage.output_tokens"] == 3
    assert attributes["langfuse.observation.prompt.name"] == "support/answer"
    assert attributes["langfuse.observation.prompt.version"] == 3
    assert attributes["langfuse.observation.metadata.prompt_label"] == "prod"
    assert json.loads(str(attributes["langfuse.observation.output"]))["content"] == "Bonjour"
    assert attributes["langfuse.observation.input"] == '[{"role":"user","content":"Hi"}]'


async def test_a_stream_through_send_ends_at_the_last_chunk(memory: MemoryTracing) -> None:
    span = _start(memory)
    pieces = [STREAM[i : i + 37] for i in range(0, len(STREAM), 37)]
    await _send_answer(span, 200, b"text/event-stream; charset=utf-8", pieces)
    attributes = dict(memory.only_span().attributes or {})
    assert attributes["gen_ai.usage.input_tokens"] == 20
    assert attributes["gen_ai.usage.output_tokens"] == 2
    assert attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert attributes["langfuse.observation.output"] == '{"role":"assistant","content":"Bonjour"}'


async def test_without_content_no_input_or_output(memory_without_content: MemoryTracing) -> None:
    span = _start(memory_without_content)
    await _send_answer(span, 200, b"text/event-stream", [STREAM])
    attributes = dict(memory_without_content.only_span().attributes or {})
    assert "langfuse.observation.input" not in attributes
    assert "langfuse.observation.output" not in attributes
    assert attributes["gen_ai.usage.output_tokens"] == 2


async def test_an_upstream_error_status_marks_the_span(memory: MemoryTracing) -> None:
    span = _start(memory)
    await _send_answer(span, 429, b"application/json", [b'{"error": {"code": "rate_limited"}}'])
    finished = memory.only_span()
    assert finished.status.status_code is StatusCode.ERROR
    assert dict(finished.attributes or {})["error.type"] == "429"


async def test_our_error_code_wins_over_the_status(memory: MemoryTracing) -> None:
    span = _start(memory)
    span.fail("upstream_timeout")
    await _send_answer(span, 504, b"application/json", [b"{}"])
    assert dict(memory.only_span().attributes or {})["error.type"] == "upstream_timeout"


async def test_an_error_before_anything_was_sent(memory: MemoryTracing) -> None:
    before = time.time_ns()
    memory.tracing.record_error(
        PromptNotFound("The prompt 'support/x' is not in the folder."),
        started=time.perf_counter(),
        body=b'{"model": "file/gpt-4o", "prompt_id": "support/x", "user": "u-9", "seed": 3}',
        headers=[(b"traceparent", TRACEPARENT.encode())],
    )
    finished = memory.only_span()
    assert finished.name == "chat file/gpt-4o"
    assert finished.start_time is not None
    assert finished.end_time is not None
    # Started at the arrival the door saw (perf_counter), on the wall clock.
    assert before - 1_000_000 <= finished.start_time <= finished.end_time
    assert finished.status.status_code is StatusCode.ERROR
    assert finished.status.description == "The prompt 'support/x' is not in the folder."
    # What was known before the error: the model asked for, the user, the prompt's name
    # (in the metadata: without a version, prompt.name would make Langfuse drop the span).
    assert dict(finished.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "file/gpt-4o",
        "gen_ai.request.seed": 3,
        "user.id": "u-9",
        "langfuse.user.id": "u-9",
        "langfuse.observation.metadata.prompt_name": "support/x",
        "error.type": "prompt_not_found",
    }
    assert finished.context is not None
    assert f"{finished.context.trace_id:032x}" == CALLER_TRACE


async def test_the_callers_traceparent_makes_the_span_its_child(memory: MemoryTracing) -> None:
    span = _start(memory, traceparent=TRACEPARENT, tracestate="vendor=1")
    headers = span.trace_headers()
    span.end()
    finished = memory.only_span()
    assert finished.context is not None
    assert finished.parent is not None
    assert f"{finished.context.trace_id:032x}" == CALLER_TRACE
    assert f"{finished.parent.span_id:016x}" == CALLER_SPAN
    assert finished.parent.is_remote
    # Sent upstream: the same trace, our span as the parent, the caller's tracestate kept.
    assert headers == {
        "traceparent": f"00-{CALLER_TRACE}-{finished.context.span_id:016x}-01",
        "tracestate": "vendor=1",
    }


@pytest.mark.parametrize(
    "traceparent", [None, "garbage", "00-" + "0" * 32 + "-" + "0" * 16 + "-01"]
)
async def test_no_valid_traceparent_starts_a_trace(
    memory: MemoryTracing, traceparent: str | None
) -> None:
    span = _start(memory, traceparent=traceparent)
    span.end()
    finished = memory.only_span()
    assert finished.parent is None
    assert finished.context is not None
    assert finished.context.trace_id != 0


async def test_an_open_span_of_the_application_is_the_parent(memory: MemoryTracing) -> None:
    # A host that traces with OpenTelemetry has read the caller's traceparent itself (or
    # chose a trace of its own): its open span wins over the header (README, "Traces").
    app_tracer = TracerProvider().get_tracer("the-app")
    with app_tracer.start_as_current_span("app request") as app_span:
        span = _start(memory, traceparent=TRACEPARENT)
        headers = span.trace_headers()
        span.end()
    host = app_span.get_span_context()
    finished = memory.only_span()
    assert finished.parent is not None
    assert finished.context is not None
    assert finished.parent.span_id == host.span_id
    assert finished.parent.is_remote is False  # in this process
    assert finished.context.trace_id == host.trace_id != int(CALLER_TRACE, 16)
    assert headers["traceparent"] == f"00-{host.trace_id:032x}-{span.span_id:016x}-01"


async def test_end_is_idempotent_and_a_client_that_left_still_ends_the_span(
    memory: MemoryTracing,
) -> None:
    span = _start(memory)

    async def gone(message: Message) -> None:
        raise OSError("client went away")

    send = watched_send(gone, AnswerWatch(0.0, span))
    with pytest.raises(OSError, match="went away"):
        await send({"type": "http.response.start", "status": 200, "headers": []})
    span.end()  # the door's finally
    span.end()
    assert len(memory.spans()) == 1


async def test_an_httpx_response_stream_ends_the_span_when_closed(memory: MemoryTracing) -> None:
    span = _start(memory)
    span.response_start(200, "text/event-stream")
    pieces = [STREAM[i : i + 50] for i in range(0, len(STREAM), 50)]

    class Upstream(httpx2.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            for piece in pieces:
                yield piece

    response = httpx2.Response(200, stream=TracedStream(Upstream(), span))
    assert await response.aread() == STREAM  # httpx2 closes the stream once it is read
    attributes = dict(memory.only_span().attributes or {})
    assert attributes["gen_ai.usage.input_tokens"] == 20


@pytest.mark.parametrize("tracestate", [None, "vendor=1,other=x"])
async def test_trace_headers_are_what_the_propagator_writes(
    memory: MemoryTracing, tracestate: str | None
) -> None:
    span = _start(memory, traceparent=TRACEPARENT, tracestate=tracestate)
    context = SpanContext(
        span.trace_id,
        span.span_id,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState.from_header([tracestate]) if tracestate else None,
    )
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(
        carrier, context=trace.set_span_in_context(NonRecordingSpan(context))
    )
    assert span.trace_headers() == carrier
    span.end()


@pytest.mark.parametrize(
    ("traceparent", "tracestate"),
    [
        (TRACEPARENT, None),
        (f"00-{CALLER_TRACE}-{CALLER_SPAN}-00", "a=1"),  # not sampled by the caller
        (f" 00-{CALLER_TRACE}-{CALLER_SPAN}-03\t", " a=1 , ,b=x@y "),
        (f"01-{CALLER_TRACE}-{CALLER_SPAN}-01-future", "k@v=1"),  # a later version
        (f"00-{CALLER_TRACE}-{CALLER_SPAN}-01-extra", None),  # version 00 has no extra
        (f"ff-{CALLER_TRACE}-{CALLER_SPAN}-01", None),
        (f"00-{CALLER_TRACE.upper()}-{CALLER_SPAN}-01", None),
        (f"00-{'0' * 32}-{CALLER_SPAN}-01", None),
        (f"00-{CALLER_TRACE}-{'0' * 16}-01", None),
        (TRACEPARENT, "a=1,a=2"),  # a repeated key: the whole tracestate is dropped
        (TRACEPARENT, "A=1"),  # a malformed key: the same
        ("garbage", None),
    ],
)
def test_the_parent_is_read_as_opentelemetrys_propagator_reads_it(
    traceparent: str, tracestate: str | None
) -> None:
    carrier = {"traceparent": traceparent}
    if tracestate is not None:
        carrier["tracestate"] = tracestate
    expected = trace.get_current_span(
        TraceContextTextMapPropagator().extract(carrier)
    ).get_span_context()
    parent = parent_of(traceparent, tracestate)
    if not expected.is_valid:
        assert parent is None
        return
    assert parent is not None
    assert (parent.trace_id, parent.span_id, parent.sampled, parent.remote) == (
        expected.trace_id,
        expected.span_id,
        expected.trace_flags.sampled,
        True,
    )
    assert parent.trace_state == ",".join(f"{k}={v}" for k, v in expected.trace_state.items())


async def test_a_reader_that_fails_never_breaks_the_answer(
    memory: MemoryTracing, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: object, chunk: bytes) -> None:
        raise IndexError("a bug")

    monkeypatch.setattr(StreamAnswerReader, "feed", broken)
    span = _start(memory)
    with capture_logs() as logs:
        sent = await _send_answer(span, 200, b"text/event-stream", [STREAM[:10], STREAM[10:]])
    assert b"".join(m.get("body", b"") for m in sent) == STREAM
    assert [log["event"] for log in logs] == ["answer_unreadable"]
    finished = memory.only_span()
    assert "gen_ai.usage.input_tokens" not in dict(finished.attributes or {})


async def test_start_request_records_the_body_sent_on_and_its_prompt(
    memory: MemoryTracing,
) -> None:
    result = RewriteResult(
        body=BODY,
        model="gpt-4o",
        prompt=Prompt(name="greeting", version=4, type="text", prompt="Hi"),
        store="langfuse",
        cache_status=CacheStatus.STALE,
    )
    span = memory.tracing.start_request(result, b'{"model": "original"}', started=0.0)
    span.end()
    attributes = dict(memory.only_span().attributes or {})
    assert attributes["gen_ai.request.model"] == "gpt-4o"  # the body sent on, not the client's
    assert attributes["langfuse.observation.prompt.version"] == 4
    assert attributes["langfuse.observation.metadata.prompt_cache"] == "stale"


async def test_start_request_for_a_body_passed_on_unchanged(memory: MemoryTracing) -> None:
    memory.tracing.start_request(None, b'{"model": "gpt-4o-mini"}', started=0.0).end()
    span = memory.only_span()
    assert span.name == "chat gpt-4o-mini"
    assert "langfuse.observation.type" not in dict(span.attributes or {})
