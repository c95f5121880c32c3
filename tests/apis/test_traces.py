"""A span per request on ``/v1/responses`` and ``/v1/messages``, with the tokens of JSON answers
and of both kinds of streams (``response.completed``; ``message_start`` + ``message_delta``),
as the trace receiver got them from a sidecar driven by the real SDKs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anthropic
import msgspec
import openai
import pytest

from examples.starlette_app.app import PROMPTS
from prompt_middleware import Secret, Settings
from prompt_middleware.sidecar import Sidecar
from tests.fakes import api_answers
from tests.fakes.otlp import FakeCollector, ReceivedSpan
from tests.fakes.server import serve_in_background
from tests.fakes.upstream import FakeUpstream

PROMPT = {"prompt_id": "claude/triage", "prompt_variables": {"product": "Acme"}}


@dataclass
class Running:
    openai: openai.AsyncOpenAI
    anthropic: anthropic.AsyncAnthropic
    sidecar: Sidecar
    upstream: FakeUpstream
    collector: FakeCollector

    async def spans(self, count: int) -> list[ReceivedSpan]:
        tracing = self.sidecar.middleware.tracing
        assert tracing is not None
        assert await asyncio.to_thread(tracing.force_flush)
        return await self.collector.wait_for_spans(count)

    def counts(self) -> tuple[int, int]:
        """The token counts the fake upstream answered for its last request."""
        body = self.upstream.last.body
        return api_answers.usage_counts(body, body.decode())


@pytest.fixture
async def running(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "sidecar-under-test")
    for name in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)
    upstream, collector = FakeUpstream(), FakeCollector()
    async with collector.serve() as collector_url, serve_in_background(upstream) as upstream_url:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector_url)
        settings = Settings(
            prompts_dir=str(PROMPTS),
            upstream_base_url=upstream_url + "/v1",
            upstream_api_key=Secret("sk-openai"),
            anthropic_api_key=Secret("sk-ant"),
            traces="otlp",
        )
        sidecar = Sidecar(settings)
        async with serve_in_background(sidecar, lifespan="on") as url:
            running = Running(
                openai.AsyncOpenAI(api_key="k", base_url=url + "/v1", max_retries=0),
                anthropic.AsyncAnthropic(api_key="k", base_url=url, max_retries=0),
                sidecar,
                upstream,
                collector,
            )
            yield running
            await running.openai.close()
            await running.anthropic.close()


def _usage(span: ReceivedSpan) -> tuple[int, int]:
    attributes = span.attributes
    return attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_responses_request_is_one_span_with_its_tokens(
    running: Running, stream: bool
) -> None:
    answer = await running.openai.responses.create(
        model="gpt-4o", input="Hi", stream=stream, safety_identifier="user-9", extra_body=PROMPT
    )
    if stream:
        assert [event async for event in answer]  # type: ignore[union-attr]
    [span] = await running.spans(1)
    attributes = span.attributes
    assert span.name == "chat claude-sonnet-4-5"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.response.model"] == "claude-sonnet-4-5"
    assert _usage(span) == running.counts()
    assert attributes["user.id"] == "user-9"
    assert attributes["langfuse.observation.metadata.prompt_name"] == "claude/triage"
    assert attributes["langfuse.observation.output"].startswith('{"role":"assistant","content":')
    assert attributes["langfuse.observation.input"] == '[{"role":"user","content":"Hi"}]'


@pytest.mark.parametrize("stream", [False, True])
async def test_a_messages_request_is_one_span_with_its_tokens(
    running: Running, stream: bool
) -> None:
    answer = await running.anthropic.messages.create(
        model="claude",
        max_tokens=5,
        messages=[{"role": "user", "content": "Hi"}],
        metadata={"user_id": "user-3"},
        stream=stream,
        extra_body=PROMPT,
    )
    if stream:
        assert [event async for event in answer]  # type: ignore[union-attr]
    [span] = await running.spans(1)
    attributes = span.attributes
    assert attributes["gen_ai.provider.name"] == "anthropic"
    # Streamed: input tokens from message_start, output from message_delta's count (the
    # start's placeholder count of 1 is replaced).
    assert _usage(span) == running.counts()
    assert attributes["user.id"] == "user-3"
    assert attributes["gen_ai.response.id"] == api_answers.MESSAGE_ID
    text = running.upstream.last.body.decode()
    output = '{"role":"assistant","content":' + msgspec.json.encode(text).decode() + "}"
    assert attributes["langfuse.observation.output"] == output
