"""The rewritten request that leaves the transport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import openai
import respx

from tests.doors.transport.helpers import CHAT_URL, completion, http_client_of, sent
from tests.fakes.memory import MemoryStore


async def test_managed_request_is_rewritten_before_it_leaves(
    client: openai.AsyncOpenAI, router: respx.Router
) -> None:
    route = router.post(CHAT_URL).respond(json=completion("Hello, Ada!"))
    result = await client.chat.completions.create(
        model="mem/gpt-4o-mini",
        messages=[],
        extra_body={"prompt_id": "greeting", "prompt_variables": {"name": "Ada"}},
    )
    assert result.choices[0].message.content == "Hello, Ada!"
    request = route.calls.last.request
    assert json.loads(request.content) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello Ada."}],
    }
    assert b"prompt_" not in request.content
    assert request.headers["content-length"] == str(len(request.content))
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["host"] == "upstream.test"


async def test_chat_prompt_takes_client_messages_model_and_parameters(
    client: openai.AsyncOpenAI, router: respx.Router
) -> None:
    route = router.post(CHAT_URL).respond(json=completion(model="gpt-4o"))
    result = await client.chat.completions.create(
        model="gpt-3.5-turbo",
        messages=[{"role": "user", "content": "Where is my parcel?"}],
        temperature=0.9,
        top_p=0.5,
        extra_body={"prompt_id": "support/answer", "prompt_variables": {"product": "Acme"}},
    )
    assert result.model == "gpt-4o"
    assert sent(route) == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You help with Acme."},
            {"role": "user", "content": "Where is my parcel?"},
        ],
        "temperature": 0.2,
        "top_p": 0.5,
    }


async def test_streamed_request_body_is_read_and_rewritten(
    client: openai.AsyncOpenAI, router: respx.Router
) -> None:
    route = router.post(CHAT_URL).respond(json=completion())

    async def body(*parts: bytes) -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    http = http_client_of(client)
    await http.post(
        CHAT_URL,
        content=body(b'{"model":"m","prompt_id":"greeting",', b'"prompt_variables":{"name":"Ed"}}'),
    )
    request = route.calls.last.request
    assert json.loads(request.content)["messages"][0]["content"] == "Hello Ed."
    assert "transfer-encoding" not in request.headers
    assert request.headers["content-length"] == str(len(request.content))

    await http.post(CHAT_URL, content=body(b'{"model": "m",', b' "messages": []}'))
    assert route.calls.last.request.content == b'{"model": "m", "messages": []}'


async def test_the_cache_serves_repeated_calls(
    client: openai.AsyncOpenAI, router: respx.Router, store: MemoryStore
) -> None:
    router.post(CHAT_URL).respond(json=completion())
    statuses = []
    for _ in range(3):
        raw = await client.chat.completions.with_raw_response.create(
            model="mem/gpt-4o-mini",
            messages=[],
            extra_body={"prompt_id": "greeting", "prompt_variables": {"name": "Gil"}},
        )
        statuses.append(raw.headers["x-prompt-cache"])
    assert statuses == ["miss", "hit", "hit"]
    assert store.total_calls == 1
