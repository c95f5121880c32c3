"""PromptTransport on an ``httpx2`` client, built as the README shows it, under today's SDKs.

``openai`` 3 and ``anthropic`` 2 are built on httpx2: mypy checks the constructions below as
they are written in the README, with no ``type: ignore``. The Messages API itself is not
managed here: an Anthropic request is passed on as the SDK sent it.
"""

from __future__ import annotations

import json
from typing import Any, cast

import anthropic
import httpx
import httpx2
import openai
import pytest
import respx

from prompt_middleware import PromptTransport, Settings
from tests.doors.transport.helpers import CHAT_URL, UPSTREAM, chunk, completion, sent
from tests.fakes.memory import MemoryStore

ANTHROPIC = "http://anthropic.test"
MESSAGES_URL = f"{ANTHROPIC}/v1/messages"
MANAGED: dict[str, Any] = {"prompt_id": "greeting", "prompt_variables": {"name": "Ada"}}
CONVERSATION: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hi"}]


def message(text: str) -> dict[str, Any]:
    """A Messages API answer, as ``anthropic.types.Message`` has it."""
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 2},
    }


def events(text: str) -> bytes:
    """The same answer as Anthropic streams it: one event per step, each ``event:`` + ``data:``."""
    steps: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"message": {**message(""), "content": [], "stop_reason": None}}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": text}}),
        ("content_block_stop", {"index": 0}),
        (
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 2},
            },
        ),
        ("message_stop", {}),
    ]
    return b"".join(
        f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()
        for name, data in steps
    )


def transport(store: MemoryStore) -> PromptTransport:
    return PromptTransport(settings=Settings(default_store="mem"), stores={"mem": store})


def openai_client(store: MemoryStore) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="sk-test",
        base_url=UPSTREAM,
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=transport(store)),
    )


def anthropic_client(store: MemoryStore, **options: Any) -> anthropic.AsyncAnthropic:
    """``options`` for the httpx2 client."""
    return anthropic.AsyncAnthropic(
        api_key="sk-ant-test",
        base_url=ANTHROPIC,
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=transport(store), **options),
    )


async def test_the_openai_sdk_on_an_httpx2_client(router: respx.Router, store: MemoryStore) -> None:
    route = router.post(CHAT_URL).respond(json=completion("Hello, Ada."))
    client = openai_client(store)
    async with client:
        result = await client.chat.completions.create(
            model="mem/gpt-4o-mini", messages=[], extra_body=MANAGED
        )
    assert result.choices[0].message.content == "Hello, Ada."
    assert sent(route) == {
        "messages": [{"role": "user", "content": "Hello Ada."}],
        "model": "gpt-4o-mini",
    }


async def test_the_openai_sdk_streams_on_an_httpx2_client(
    router: respx.Router, store: MemoryStore
) -> None:
    sse = chunk("Hel") + chunk("lo", finish="stop") + b"data: [DONE]\n\n"
    route = router.post(CHAT_URL).respond(
        headers={"content-type": "text/event-stream"}, content=sse
    )
    client = openai_client(store)
    async with client:
        stream = await client.chat.completions.create(
            model="mem/gpt-4o-mini", messages=[], stream=True, extra_body=MANAGED
        )
        pieces = [part.choices[0].delta.content async for part in stream]
    assert pieces == ["Hel", "lo"]
    assert sent(route)["stream"] is True
    assert sent(route)["messages"] == [{"role": "user", "content": "Hello Ada."}]


async def test_the_anthropic_sdk_is_passed_on_unmanaged(
    router: respx.Router, store: MemoryStore
) -> None:
    route = router.post(MESSAGES_URL).respond(json=message("Hello."))
    handed: list[httpx2.Request] = []

    async def record(request: httpx2.Request) -> None:
        handed.append(request)

    client = anthropic_client(store, event_hooks={"request": [record]})
    async with client:
        answer = await client.messages.with_raw_response.create(
            model="claude-sonnet-4-5", max_tokens=64, messages=CONVERSATION
        )
    parsed = await answer.parse()
    assert parsed.content[0].type == "text"
    assert parsed.content[0].text == "Hello."
    assert not [name for name in answer.headers if name.startswith("x-prompt")]
    request = route.calls.last.request
    assert request.content == handed[0].content  # the SDK's bytes, as it sent them
    assert json.loads(request.content) == {
        "max_tokens": 64,
        "messages": CONVERSATION,
        "model": "claude-sonnet-4-5",
    }
    assert request.headers["authorization"] == "Bearer sk-ant-test"
    assert store.total_calls == 0


async def test_an_anthropic_stream_is_passed_on_unmanaged(
    router: respx.Router, store: MemoryStore
) -> None:
    route = router.post(MESSAGES_URL).respond(
        headers={"content-type": "text/event-stream"}, content=events("Hello.")
    )
    client = anthropic_client(store)
    async with client:
        stream = await client.messages.create(
            model="claude-sonnet-4-5", max_tokens=64, messages=CONVERSATION, stream=True
        )
        texts = [
            event.delta.text
            async for event in stream
            if event.type == "content_block_delta" and event.delta.type == "text_delta"
        ]
    assert texts == ["Hello."]
    assert json.loads(route.calls.last.request.content)["stream"] is True


def test_the_anthropic_sdk_refuses_an_httpx_client() -> None:
    # Why the transport is an httpx2 one: the Anthropic SDK takes nothing else.
    with pytest.raises(TypeError, match="httpx2"):
        anthropic.AsyncAnthropic(api_key="sk-ant-test", http_client=cast(Any, httpx.AsyncClient()))
