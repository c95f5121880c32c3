"""The x-prompt-* response headers, as the SDK's raw response shows them."""

from __future__ import annotations

import openai
import respx

from tests.doors.transport.helpers import CHAT_URL, completion


async def test_prompt_headers_are_visible_through_the_raw_response(
    client: openai.AsyncOpenAI, router: respx.Router
) -> None:
    router.post(CHAT_URL).respond(json=completion(), headers={"x-upstream": "yes"})
    raw = await client.chat.completions.with_raw_response.create(
        model="mem/gpt-4o-mini",
        messages=[],
        extra_body={"prompt_id": "greeting", "prompt_variables": {"name": "Flo"}},
    )
    assert raw.headers["x-prompt-name"] == "greeting"
    assert raw.headers["x-prompt-version"] == "1"
    assert raw.headers["x-prompt-store"] == "mem"
    assert raw.headers["x-prompt-cache"] == "miss"
    assert float(raw.headers["x-prompt-middleware-overhead-ms"]) >= 0
    assert raw.headers["x-upstream"] == "yes"
    assert raw.parse().choices[0].message.content == "Hi!"
