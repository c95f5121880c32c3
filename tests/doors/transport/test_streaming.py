"""A streamed answer reaches the SDK chunk by chunk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import openai
import respx

from tests.doors.transport.helpers import CHAT_URL, chunk, sent


async def test_streaming_answer_reaches_the_sdk_chunk_by_chunk(
    client: openai.AsyncOpenAI, router: respx.Router
) -> None:
    # The upstream holds its last chunk back until the SDK has yielded the first: a
    # transport that buffered the answer would never get there (the timeout fails the test).
    first_seen = asyncio.Event()

    async def sse() -> AsyncIterator[bytes]:
        yield chunk("Hel")
        await first_seen.wait()
        yield chunk("lo", finish="stop")
        yield b"data: [DONE]\n\n"

    route = router.post(CHAT_URL).mock(
        return_value=httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse()
        )
    )
    pieces: list[str | None] = []
    async with asyncio.timeout(10):
        stream = await client.chat.completions.create(
            model="mem/gpt-4o-mini",
            messages=[],
            stream=True,
            extra_body={"prompt_id": "greeting", "prompt_variables": {"name": "Hal"}},
        )
        async for event in stream:
            pieces.append(event.choices[0].delta.content)
            first_seen.set()
    assert pieces == ["Hel", "lo"]
    body = sent(route)
    assert body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "Hello Hal."}]
