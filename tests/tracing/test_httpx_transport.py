"""``HttpxPromptTransport`` with traces on: the span reads an httpx response stream as the
caller reads it, as ``PromptTransport``'s does an httpx2 one (``test_doors.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from examples.starlette_app.app import PROMPTS
from prompt_middleware import HttpxPromptTransport, Settings
from tests.tracing.conftest import MemoryTracing
from tests.tracing.test_answer import STREAM
from tests.tracing.test_doors import MANAGED


class _InThirds(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        third = len(STREAM) // 3
        for piece in (STREAM[:third], STREAM[third : 2 * third], STREAM[2 * third :]):
            yield piece


async def test_the_span_ends_when_the_httpx_stream_closes(memory: MemoryTracing) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, headers=headers, stream=_InThirds())

    transport = HttpxPromptTransport(
        httpx.MockTransport(answer), Settings(prompts_dir=str(PROMPTS)), tracing=memory.tracing
    )
    async with (
        httpx.AsyncClient(transport=transport, base_url="https://api.test/v1") as client,
        client.stream("POST", "/chat/completions", json=MANAGED) as response,
    ):
        assert memory.spans() == ()  # open while the body is being read
        assert await response.aread() == STREAM
    attributes = dict(memory.only_span().attributes or {})
    assert attributes["gen_ai.usage.output_tokens"] == 2
    await transport.aclose()
