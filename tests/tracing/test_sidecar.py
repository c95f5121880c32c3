"""The sidecar with traces on, driven by the real openai SDK: what reaches the trace receiver.

Three real uvicorn servers on 127.0.0.1 — the fake upstream, the sidecar, the OTLP receiver —
and the SDK's own exporter in between: what is asserted is what crossed the wire.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from examples.starlette_app.app import PROMPTS
from prompt_middleware import Secret, Settings
from prompt_middleware.sidecar import Sidecar
from tests.fakes.otlp import FakeCollector
from tests.fakes.server import serve_in_background
from tests.fakes.upstream import CannedResponse, FakeUpstream
from tests.tracing.conftest import PROMPT_FIELDS, Running

UPSTREAM_KEY = "sk-upstream-secret"
SIDECAR_KEY = "sidecar-key-secret"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


@pytest.fixture
async def running(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    upstream, collector = FakeUpstream(), FakeCollector()
    async with collector.serve() as collector_url, serve_in_background(upstream) as upstream_url:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector_url)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "sidecar-under-test")
        settings = Settings(
            prompts_dir=str(PROMPTS),
            upstream_base_url=upstream_url + "/v1",
            upstream_api_key=Secret(UPSTREAM_KEY),
            api_keys=(Secret(SIDECAR_KEY),),
            traces="otlp",
        )
        sidecar = Sidecar(settings)
        async with serve_in_background(sidecar, lifespan="on") as url:
            client = openai.AsyncOpenAI(api_key=SIDECAR_KEY, base_url=url + "/v1", max_retries=0)
            tracing = sidecar.middleware.tracing
            assert tracing is not None
            yield Running(client, tracing, upstream, collector, url)
            await client.close()


async def _ask(
    client: openai.AsyncOpenAI, *, user: str = "user-7", traceparent: str | None = None
) -> ChatCompletion:
    return await client.chat.completions.create(
        model="file/gpt-4o-mini",
        messages=[{"role": "user", "content": "Refund?"}],
        user=user,
        extra_body=PROMPT_FIELDS,
        extra_headers={"traceparent": traceparent} if traceparent else None,
    )


async def _ask_streamed(
    client: openai.AsyncOpenAI, *, include_usage: bool
) -> list[ChatCompletionChunk]:
    stream = await client.chat.completions.create(
        model="file/gpt-4o-mini",
        messages=[{"role": "user", "content": "Refund?"}],
        stream=True,
        stream_options={"include_usage": True} if include_usage else None,
        extra_body=PROMPT_FIELDS,
    )
    return [chunk async for chunk in stream]


def _traceparent_sent_upstream(upstream: FakeUpstream) -> tuple[str, str]:
    value = upstream.last.header("traceparent")
    assert value is not None
    version, trace_id, span_id, flags = value.split("-")
    assert (version, flags) == ("00", "01")
    return trace_id, span_id


async def test_a_managed_request_is_one_span_linked_to_its_prompt(running: Running) -> None:
    completion = await _ask(running.client, traceparent=TRACEPARENT)
    assert completion.usage is not None
    [span] = await running.spans(1)
    assert span.name == "chat gpt-4o"
    assert span.resource["service.name"] == "sidecar-under-test"
    assert span.status_code == 0  # unset: no error
    attributes = span.attributes
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "gpt-4o"
    assert attributes["gen_ai.request.temperature"] == 0.2
    assert attributes["gen_ai.request.max_tokens"] == 300
    assert attributes["gen_ai.response.model"] == "gpt-4o"
    assert attributes["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert attributes["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    assert attributes["langfuse.observation.type"] == "generation"
    # A local-folder prompt: named in the metadata, never by prompt.name without a version
    # (Langfuse would drop the generation).
    assert not any(name.startswith("langfuse.observation.prompt.") for name in attributes)
    assert attributes["langfuse.observation.metadata.prompt_name"] == "support/answer"
    assert attributes["langfuse.observation.metadata.prompt_version"] == 2
    assert attributes["langfuse.observation.metadata.prompt_store"] == "file"
    assert attributes["langfuse.observation.metadata.prompt_label"] == "production"
    assert attributes["langfuse.observation.metadata.prompt_cache"] == "miss"
    assert attributes["user.id"] == attributes["langfuse.user.id"] == "user-7"
    sent = running.upstream.last.json()
    assert json.loads(attributes["langfuse.observation.input"]) == sent["messages"]
    output = json.loads(attributes["langfuse.observation.output"])
    assert output["content"] == completion.choices[0].message.content
    # The caller's trace continues through the span to the upstream.
    assert (span.trace_id, span.parent_span_id) == (CALLER_TRACE, CALLER_SPAN)
    assert _traceparent_sent_upstream(running.upstream) == (span.trace_id, span.span_id)


async def test_a_stream_is_one_span_with_the_usage_chunks_tokens(running: Running) -> None:
    chunks = await _ask_streamed(running.client, include_usage=True)
    usage = chunks[-1].usage
    assert usage is not None
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    [span] = await running.spans(1)
    assert span.attributes["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert span.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert json.loads(span.attributes["langfuse.observation.output"])["content"] == text
    assert span.name == "chat gpt-4o"
    # From arrival to the last byte: the span ends after the stream's last chunk was sent.
    assert span.end_ns > span.start_ns


async def test_an_unmanaged_request_is_a_span_without_prompt_attributes(running: Running) -> None:
    await running.client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], seed=7
    )
    [span] = await running.spans(1)
    assert span.name == "chat gpt-4o"
    assert span.attributes["gen_ai.request.seed"] == 7
    assert not any(name.startswith("langfuse.observation.prompt") for name in span.attributes)
    assert "langfuse.observation.type" not in span.attributes


async def test_errors_mark_the_span_with_their_message(running: Running) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        await running.client.chat.completions.create(
            model="file/x",
            messages=[],
            user="user-3",
            extra_body={"prompt_id": "no/such/prompt"},
        )
    running.upstream.response = CannedResponse(429, b'{"error": {"message": "slow down"}}')
    with pytest.raises(openai.RateLimitError):
        await running.client.chat.completions.create(model="gpt-4o", messages=[], user="user-4")
    refused, limited = await running.spans(2)
    assert (refused.status_code, refused.attributes["error.type"]) == (2, "prompt_not_found")
    # Our error's message, as the client got it, and what was known before the error.
    assert isinstance(not_found.value.body, dict)
    assert refused.status_message == not_found.value.body["message"]
    assert refused.attributes["langfuse.observation.metadata.prompt_name"] == "no/such/prompt"
    assert refused.attributes["user.id"] == "user-3"
    assert refused.attributes["gen_ai.request.model"] == "file/x"
    assert not any(name.startswith("langfuse.observation.prompt.") for name in refused.attributes)
    # The upstream's status line; the request as it was sent.
    assert (limited.status_code, limited.attributes["error.type"]) == (2, "429")
    assert limited.status_message == "429 Too Many Requests"
    assert limited.attributes["user.id"] == "user-4"
    assert limited.name == "chat gpt-4o"


async def test_no_secret_in_any_exported_attribute(running: Running) -> None:
    await _ask(running.client)
    await _ask_streamed(running.client, include_usage=True)
    spans = await running.spans(2)
    secrets = (UPSTREAM_KEY, SIDECAR_KEY, "Bearer", "authorization")
    for span in spans:
        for name, value in [*span.attributes.items(), *span.resource.items()]:
            for secret in secrets:
                assert secret.lower() not in f"{name}={value}".lower()


async def test_a_request_the_key_check_refuses_makes_no_span(running: Running) -> None:
    async with httpx2.AsyncClient(base_url=running.url) as client:
        refused = await client.post(
            "/v1/chat/completions",
            json={"model": "file/gpt-4o", "messages": [], **PROMPT_FIELDS},
            headers={"authorization": "Bearer not-a-key", "traceparent": TRACEPARENT},
        )
    assert refused.status_code == 401
    await _ask(running.client)  # then one request with the key, which is traced
    [span] = await running.spans(1)
    assert span.trace_id != CALLER_TRACE  # the refused request's trace reached nobody
    assert running.collector.spans == [span]


async def test_an_unreachable_upstream_is_our_error_code(monkeypatch: pytest.MonkeyPatch) -> None:
    collector = FakeCollector()
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    async with collector.serve() as collector_url:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector_url)
        settings = Settings(
            prompts_dir=str(PROMPTS),
            upstream_base_url=f"http://127.0.0.1:{closed_port}/v1",
            traces="otlp",
        )
        sidecar = Sidecar(settings)
        async with serve_in_background(sidecar, lifespan="on") as url:
            client = openai.AsyncOpenAI(api_key="k", base_url=url + "/v1", max_retries=0)
            with pytest.raises(openai.InternalServerError):
                await _ask(client)
            await client.close()
            assert sidecar.middleware.tracing is not None
            running = Running(client, sidecar.middleware.tracing, FakeUpstream(), collector)
            [span] = await running.spans(1)
    assert span.status_code == 2
    assert span.attributes["error.type"] == "upstream_unavailable"


async def test_with_traces_off_the_callers_trace_headers_pass_untouched() -> None:
    upstream = FakeUpstream()
    async with serve_in_background(upstream) as upstream_url:
        settings = Settings(prompts_dir=str(PROMPTS), upstream_base_url=upstream_url + "/v1")
        sidecar = Sidecar(settings)
        assert sidecar.middleware.tracing is None
        async with (
            serve_in_background(sidecar, lifespan="on") as url,
            httpx2.AsyncClient(base_url=url) as client,
        ):
            await client.post(
                "/v1/chat/completions",
                json={"model": "file/x", "prompt_id": "greeting", "messages": []},
                headers={"traceparent": TRACEPARENT, "tracestate": "a=1"},
            )
    assert upstream.last.header("traceparent") == TRACEPARENT
    assert upstream.last.header("tracestate") == "a=1"
