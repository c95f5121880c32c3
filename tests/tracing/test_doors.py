"""Both doors make one span per request on a matched route, and read the answer as it passes.

The middleware's span covers the wrapped app's handling and reads what the app sends; the
transport's covers the wrapped transport's call and ends when the response stream closes.
Spans land in memory, through the SDK's batch processor.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx2
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from starlette.types import ASGIApp, Receive, Scope, Send

from examples.starlette_app.app import PROMPTS
from prompt_middleware import PromptMiddleware, PromptTransport, Settings
from prompt_middleware.experiments import Experiment, Variant
from prompt_middleware.sidecar.forwarder import Forwarder
from tests.conftest import RecordingApp
from tests.fakes.server import serve_in_background
from tests.fakes.upstream import FakeUpstream
from tests.tracing.conftest import MemoryTracing
from tests.tracing.test_answer import COMPLETION, STREAM

MANAGED = {
    "model": "file/gpt-4o-mini",
    "prompt_id": "support/answer",
    "prompt_variables": {"product": "Acme", "language": "German"},
    "messages": [{"role": "user", "content": "Refund?"}],
}
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


def _attributes(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


# --- the middleware --------------------------------------------------------------------------


class StreamingApp:
    """Answers with the SSE stream of the answer tests, in three body messages; calls
    ``before_the_last_message`` (if set) before the last one and keeps what it returned."""

    def __init__(self) -> None:
        self.before_the_last_message: Callable[[], tuple[ReadableSpan, ...]] | None = None
        self.spans_seen: tuple[ReadableSpan, ...] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        third = len(STREAM) // 3
        for piece in (STREAM[:third], STREAM[third : 2 * third], STREAM[2 * third :]):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        if self.before_the_last_message is not None:
            self.spans_seen = self.before_the_last_message()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class FailingApp:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("the app broke")


@pytest.fixture
async def through_middleware(
    memory: MemoryTracing,
) -> AsyncIterator[tuple[MemoryTracing, RecordingApp, httpx2.AsyncClient]]:
    app = RecordingApp()
    middleware = PromptMiddleware(app, Settings(prompts_dir=str(PROMPTS)), tracing=memory.tracing)
    transport = httpx2.ASGITransport(app=middleware)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield memory, app, client
    await middleware.engine.aclose()


async def test_the_middleware_span_covers_the_apps_handling(
    through_middleware: tuple[MemoryTracing, RecordingApp, httpx2.AsyncClient],
) -> None:
    memory, app, client = through_middleware
    response = await client.post(
        "/v1/chat/completions", json=MANAGED, headers={"traceparent": TRACEPARENT}
    )
    assert response.status_code == 200
    span = memory.only_span()
    attributes = _attributes(span)
    assert span.name == "chat gpt-4o"
    assert attributes["langfuse.observation.metadata.prompt_name"] == "support/answer"
    assert attributes["langfuse.observation.metadata.prompt_cache"] == "miss"
    assert attributes["langfuse.observation.metadata.prompt_store"] == "file"
    assert attributes["langfuse.observation.metadata.prompt_label"] == "production"
    assert attributes["gen_ai.request.temperature"] == 0.2
    assert json.loads(str(attributes["langfuse.observation.input"])) == app.last.json()["messages"]
    assert "langfuse.observation.output" not in attributes  # {"ok": true} has no message
    assert span.context is not None
    assert f"{span.context.trace_id:032x}" == CALLER_TRACE
    # The app is called inside the span: what it calls next continues the trace from there.
    assert app.last.headers["traceparent"] == (f"00-{CALLER_TRACE}-{span.context.span_id:016x}-01")


async def test_the_middleware_reads_a_streamed_answer_from_send(memory: MemoryTracing) -> None:
    app = StreamingApp()
    middleware = PromptMiddleware(app, Settings(prompts_dir=str(PROMPTS)), tracing=memory.tracing)
    app.before_the_last_message = memory.spans
    transport = httpx2.ASGITransport(app=middleware)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post("/v1/chat/completions", json=MANAGED)
    assert response.content == STREAM
    assert app.spans_seen == ()  # the span was open until the last byte
    attributes = _attributes(memory.only_span())
    assert attributes["gen_ai.usage.input_tokens"] == 20
    assert attributes["gen_ai.usage.output_tokens"] == 2
    await middleware.engine.aclose()


async def test_the_experiment_variant_and_its_label_are_on_the_span(
    memory: MemoryTracing,
) -> None:
    # The control (production) is switched off: every request gets the staging variant.
    variants = (Variant(label="production", weight=0), Variant(label="staging", weight=1))
    experiment = Experiment(name="tone", prompt_id="support/answer", variants=variants)
    settings = Settings(prompts_dir=str(PROMPTS), experiments=(experiment,))
    middleware = PromptMiddleware(RecordingApp(), settings, tracing=memory.tracing)
    transport = httpx2.ASGITransport(app=middleware)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post("/v1/chat/completions", json={**MANAGED, "user": "u-1"})
    assert response.headers["x-prompt-variant"] == "staging"
    span = memory.only_span()
    attributes = _attributes(span)
    assert attributes["langfuse.observation.metadata.experiment_variant"] == "staging"
    assert attributes["langfuse.observation.metadata.prompt_label"] == "staging"
    assert attributes["gen_ai.request.temperature"] == 0.7  # version 1's config
    assert attributes["user.id"] == attributes["langfuse.user.id"] == "u-1"
    assert span.name == "chat gpt-4o-mini"
    await middleware.engine.aclose()


async def test_a_version_asked_for_has_no_label(memory: MemoryTracing) -> None:
    middleware = PromptMiddleware(
        RecordingApp(), Settings(prompts_dir=str(PROMPTS)), tracing=memory.tracing
    )
    transport = httpx2.ASGITransport(app=middleware)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await client.post("/v1/chat/completions", json={**MANAGED, "prompt_version": 1})
    attributes = _attributes(memory.only_span())
    assert "langfuse.observation.metadata.prompt_label" not in attributes
    assert "experiment_variant" not in " ".join(attributes)
    await middleware.engine.aclose()


async def test_an_app_that_fails_ends_its_span_as_an_error(memory: MemoryTracing) -> None:
    middleware = PromptMiddleware(
        FailingApp(), Settings(prompts_dir=str(PROMPTS)), tracing=memory.tracing
    )
    transport = httpx2.ASGITransport(app=middleware)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with pytest.raises(RuntimeError, match="the app broke"):
            await client.post("/v1/chat/completions", json=MANAGED)
    span = memory.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert _attributes(span)["error.type"] == "RuntimeError"
    await middleware.engine.aclose()


async def test_our_errors_are_spans_with_their_code(
    through_middleware: tuple[MemoryTracing, RecordingApp, httpx2.AsyncClient],
) -> None:
    memory, app, client = through_middleware
    response = await client.post(
        "/v1/chat/completions", json={**MANAGED, "prompt_id": "no/such/prompt"}
    )
    assert response.status_code == 404
    span = memory.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert _attributes(span)["error.type"] == "prompt_not_found"
    assert app.requests == []


async def test_unmanaged_and_unmatched_requests(
    through_middleware: tuple[MemoryTracing, RecordingApp, httpx2.AsyncClient],
) -> None:
    memory, _, client = through_middleware
    await client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": []})
    await client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"})
    [span] = memory.spans()  # the unmatched route has none
    assert span.name == "chat gpt-4o"
    assert "langfuse.observation.type" not in _attributes(span)


class Layer:
    """Another ASGI layer between the middleware and the forwarder: requests reach the
    forwarder through plain ASGI, the span with them in the scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


async def test_a_forwarder_behind_another_layer_sends_the_span_upstream_and_marks_its_errors(
    memory: MemoryTracing,
) -> None:
    upstream = FakeUpstream()
    async with serve_in_background(upstream) as upstream_url:
        for base_url in (upstream_url + "/v1", None):  # None: no upstream, our 400
            settings = Settings(prompts_dir=str(PROMPTS), upstream_base_url=base_url)
            forwarder = Forwarder(settings)
            middleware = PromptMiddleware(Layer(forwarder), settings, tracing=memory.tracing)
            transport = httpx2.ASGITransport(app=middleware)
            async with httpx2.AsyncClient(transport=transport, base_url="http://sidecar") as client:
                await client.post(
                    "/v1/chat/completions",
                    json=MANAGED,
                    headers={"traceparent": TRACEPARENT, "tracestate": "caller=1"},
                )
            await forwarder.aclose()
            await middleware.engine.aclose()
    forwarded, refused = memory.spans()
    assert forwarded.context is not None
    assert upstream.last.headers_named("traceparent") == [
        f"00-{CALLER_TRACE}-{forwarded.context.span_id:016x}-01"
    ]
    assert upstream.last.headers_named("tracestate") == ["caller=1"]  # the span carries it on
    assert forwarded.status.status_code is StatusCode.UNSET
    assert refused.status.status_code is StatusCode.ERROR
    assert _attributes(refused)["error.type"] == "invalid_prompt_request"  # not just "400"


# --- the transport ---------------------------------------------------------------------------


@pytest.fixture
def sent() -> list[httpx2.Request]:
    return []


class _InThirds(httpx2.AsyncByteStream):
    """A response body that arrives as a network one does: in pieces, not yet read."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        third = len(STREAM) // 3
        for piece in (STREAM[:third], STREAM[third : 2 * third], STREAM[2 * third :]):
            yield piece


def _upstream(sent: list[httpx2.Request], *, stream: bool = False) -> httpx2.MockTransport:
    def answer(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        if stream:
            headers = {"content-type": "text/event-stream"}
            return httpx2.Response(200, headers=headers, stream=_InThirds())
        return httpx2.Response(200, json=COMPLETION)  # in memory already

    return httpx2.MockTransport(answer)


async def test_the_transport_span_reads_the_response_and_sends_our_traceparent(
    memory: MemoryTracing, sent: list[httpx2.Request]
) -> None:
    transport = PromptTransport(
        _upstream(sent), Settings(prompts_dir=str(PROMPTS)), tracing=memory.tracing
    )
    async with httpx2.AsyncClient(transport=transport, base_url="https://api.test/v1") as client:
        response = await client.post(
            "/chat/completions", json=MANAGED, headers={"traceparent": TRACEPARENT}
        )
    assert response.json() == COMPLETION
    span = memory.only_span()
    attributes = _attributes(span)
    assert attributes["gen_ai.usage.input_tokens"] == 12
    assert attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert span.context is not None
    assert sent[0].headers["traceparent"] == (f"00-{CALLER_TRACE}-{span.context.span_id:016x}-01")
    await transport.aclose()


async def test_the_transport_span_ends_when_the_stream_closes(
    memory: MemoryTracing, sent: list[httpx2.Request]
) -> None:
    transport = PromptTransport(
        _upstream(sent, stream=True), Settings(prompts_dir=str(PROMPTS)), tracing=memory.tracing
    )
    async with (
        httpx2.AsyncClient(transport=transport, base_url="https://api.test/v1") as client,
        client.stream("POST", "/chat/completions", json=MANAGED) as response,
    ):
        assert memory.spans() == ()  # open while the body is being read
        assert await response.aread() == STREAM
    attributes = _attributes(memory.only_span())
    assert attributes["gen_ai.usage.output_tokens"] == 2
    await transport.aclose()


async def test_a_failing_wrapped_transport_ends_the_span_as_an_error(
    memory: MemoryTracing,
) -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    transport = PromptTransport(
        httpx2.MockTransport(refuse), Settings(prompts_dir=str(PROMPTS)), tracing=memory.tracing
    )
    async with httpx2.AsyncClient(transport=transport, base_url="https://api.test/v1") as client:
        with pytest.raises(httpx2.ConnectError):
            await client.post("/chat/completions", json=MANAGED)
    span = memory.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert _attributes(span)["error.type"] == "ConnectError"
    await transport.aclose()


async def test_a_request_the_sampler_leaves_out_is_passed_on_with_its_trace_context(
    monkeypatch: pytest.MonkeyPatch, sent: list[httpx2.Request]
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    memory = MemoryTracing()  # the SDK reads the sampler when the provider is made
    transport = PromptTransport(
        _upstream(sent, stream=True), Settings(prompts_dir=str(PROMPTS)), tracing=memory.tracing
    )
    async with (
        httpx2.AsyncClient(transport=transport, base_url="https://api.test/v1") as client,
        client.stream(
            "POST", "/chat/completions", json=MANAGED, headers={"traceparent": TRACEPARENT}
        ) as response,
    ):
        assert await response.aread() == STREAM
    assert memory.spans() == ()
    # The caller's trace goes on, marked as not sampled by this hop.
    traceparent = sent[0].headers["traceparent"]
    assert traceparent.startswith(f"00-{CALLER_TRACE}-")
    assert traceparent.endswith("-00")
    await transport.aclose()
    await memory.tracing.aclose()


@pytest.mark.parametrize("name", ["traceparent", "Traceparent", "TRACEPARENT"])
async def test_the_transport_reads_the_callers_trace_whatever_the_headers_case(
    memory: MemoryTracing, sent: list[httpx2.Request], name: str
) -> None:
    transport = PromptTransport(
        _upstream(sent), Settings(prompts_dir=str(PROMPTS)), tracing=memory.tracing
    )
    async with httpx2.AsyncClient(transport=transport, base_url="https://api.test/v1") as client:
        answered = await client.post("/chat/completions", json=MANAGED, headers={name: TRACEPARENT})
        refused = await client.post(
            "/chat/completions",
            json={**MANAGED, "prompt_id": "no/such/prompt"},
            headers={name: TRACEPARENT},
        )
    assert (answered.status_code, refused.status_code) == (200, 404)
    spans = memory.spans()
    assert len(spans) == 2
    for span in spans:  # the error's span too: it is read where the success's is
        assert span.context is not None
        assert f"{span.context.trace_id:032x}" == CALLER_TRACE
    await transport.aclose()
