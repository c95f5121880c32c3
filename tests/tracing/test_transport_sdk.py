"""``PromptTransport`` with traces on, under the real openai SDK: what reaches the receiver.

The SDK's requests go through the transport to the fake upstream (real uvicorn); the spans go
through OpenTelemetry's own exporter to the OTLP receiver. The transport builds its tracing from
the settings and closes it with itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx2
import openai
import pytest

from examples.starlette_app.app import PROMPTS
from prompt_middleware import PromptTransport, Settings
from prompt_middleware.tracing import Tracing
from tests.doors.transport.helpers import sdk_http_client
from tests.fakes.otlp import FakeCollector, ReceivedSpan
from tests.fakes.server import serve_in_background
from tests.fakes.upstream import FakeUpstream

PROMPT_FIELDS = {
    "prompt_id": "support/answer",
    "prompt_variables": {"product": "Acme", "language": "German"},
}


@dataclass
class Running:
    client: openai.AsyncOpenAI
    tracing: Tracing
    upstream: FakeUpstream
    collector: FakeCollector

    async def spans(self, count: int) -> list[ReceivedSpan]:
        """Export what has ended (the SDK's exporter blocks its thread) and wait for it."""
        assert await _flushed(self.tracing)
        return await self.collector.wait_for_spans(count)


async def _flushed(tracing: Tracing) -> bool:
    return await asyncio.to_thread(tracing.force_flush)


@pytest.fixture(autouse=True)
def _otlp_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")  # only flushes and full batches
    for name in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def running(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    upstream, collector = FakeUpstream(), FakeCollector()
    async with collector.serve() as collector_url, serve_in_background(upstream) as upstream_url:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector_url)
        settings = Settings.from_env(
            {
                "PROMPT_MIDDLEWARE_PROMPTS_DIR": str(PROMPTS),
                "PROMPT_MIDDLEWARE_TRACES": "otlp",
            }
        )
        transport = PromptTransport(settings=settings)
        tracing = transport.tracing
        assert tracing is not None
        client = openai.AsyncOpenAI(
            api_key="sk-transport-secret",
            base_url=upstream_url + "/v1",
            http_client=sdk_http_client(transport),
            max_retries=0,
        )
        yield Running(client, tracing, upstream, collector)
        await client.close()  # closes the transport, which exports what is left


async def test_a_managed_request_is_one_span_with_its_tokens(running: Running) -> None:
    completion = await running.client.chat.completions.create(
        model="file/gpt-4o-mini",
        messages=[{"role": "user", "content": "Refund?"}],
        extra_body=PROMPT_FIELDS,
    )
    assert completion.usage is not None
    [span] = await running.spans(1)
    attributes = span.attributes
    assert span.name == "chat gpt-4o"
    assert attributes["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert attributes["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    assert attributes["langfuse.observation.prompt.name"] == "support/answer"
    assert attributes["langfuse.observation.metadata.prompt_label"] == "production"
    assert (
        json.loads(attributes["langfuse.observation.input"])
        == running.upstream.last.json()["messages"]
    )
    # A root span: the SDK's flags say sampled and (W3C level 2) a random trace id.
    traceparent = running.upstream.last.header("traceparent")
    assert traceparent is not None
    assert traceparent.split("-")[:3] == ["00", span.trace_id, span.span_id]
    assert not any("sk-transport-secret" in str(value) for value in attributes.values())


async def test_a_stream_is_one_span_with_the_usage_chunks_tokens(running: Running) -> None:
    stream = await running.client.chat.completions.create(
        model="file/gpt-4o-mini",
        messages=[{"role": "user", "content": "Refund?"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body=PROMPT_FIELDS,
    )
    chunks = [chunk async for chunk in stream]
    usage = chunks[-1].usage
    assert usage is not None
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    [span] = await running.spans(1)
    assert span.attributes["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert span.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert json.loads(span.attributes["langfuse.observation.output"])["content"] == text


async def test_an_upstream_error_status_marks_the_span(running: Running) -> None:
    with pytest.raises(openai.NotFoundError):  # the fake upstream knows no such path
        await running.client.post("/nowhere/chat/completions", cast_to=httpx2.Response, body={})
    [span] = await running.spans(1)
    assert span.status_code == 2
    assert span.attributes["error.type"] == "404"
