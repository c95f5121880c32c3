"""``PromptTransport`` with traces on, under the real openai SDK: what reaches the receiver.

The SDK's requests go through the transport to the fake upstream (real uvicorn); the spans go
through OpenTelemetry's own exporter to the OTLP receiver. The transport builds its tracing from
the settings and closes it with itself.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx2
import openai
import pytest

from examples.starlette_app.app import PROMPTS
from prompt_middleware import PromptTransport, Settings
from tests.doors.transport.helpers import sdk_http_client
from tests.fakes.otlp import FakeCollector
from tests.fakes.server import serve_in_background
from tests.fakes.upstream import FakeUpstream
from tests.tracing.conftest import PROMPT_FIELDS, Running


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
    assert attributes["langfuse.observation.metadata.prompt_name"] == "support/answer"
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
