"""``HttpxPromptTransport``: the same door for a plain ``httpx`` client (SDKs older than
``openai`` 3). The upstream is httpx's own ``MockTransport``; what it is handed is what went out.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

import prompt_middleware
from prompt_middleware import HttpxPromptTransport, Settings
from tests.doors.transport.helpers import CHAT_URL, UPSTREAM, completion
from tests.fakes.memory import MemoryStore

MANAGED = {
    "model": "mem/gpt-4o-mini",
    "messages": [],
    "prompt_id": "greeting",
    "prompt_variables": {"name": "Ada"},
}


@pytest.fixture
def sent() -> list[httpx.Request]:
    return []


@pytest.fixture
async def client(sent: list[httpx.Request], store: MemoryStore) -> AsyncIterator[httpx.AsyncClient]:
    def upstream(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=completion("Hello, Ada."))

    transport = HttpxPromptTransport(
        httpx.MockTransport(upstream), Settings(default_store="mem"), stores={"mem": store}
    )
    async with httpx.AsyncClient(transport=transport, base_url=UPSTREAM) as client:
        yield client


async def test_a_managed_request_is_rewritten(
    client: httpx.AsyncClient, sent: list[httpx.Request]
) -> None:
    response = await client.post("/chat/completions", json=MANAGED)

    assert response.json()["choices"][0]["message"]["content"] == "Hello, Ada."
    assert response.headers["x-prompt-name"] == "greeting"
    assert str(sent[0].url) == CHAT_URL
    assert json.loads(sent[0].content) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hello Ada."}],
    }
    assert sent[0].headers["content-length"] == str(len(sent[0].content))


async def test_a_streamed_request_body_is_read_and_rewritten(
    client: httpx.AsyncClient, sent: list[httpx.Request]
) -> None:
    async def body() -> AsyncIterator[bytes]:
        encoded = json.dumps(MANAGED).encode()
        yield encoded[:10]
        yield encoded[10:]

    response = await client.post("/chat/completions", content=body())

    assert response.status_code == 200
    assert json.loads(sent[0].content)["messages"][0] == {"role": "user", "content": "Hello Ada."}


async def test_an_error_is_answered_without_calling_the_upstream(
    client: httpx.AsyncClient, sent: list[httpx.Request]
) -> None:
    response = await client.post("/chat/completions", json={**MANAGED, "prompt_id": "nope"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "prompt_not_found"
    assert sent == []


async def test_other_paths_pass_through_untouched(
    client: httpx.AsyncClient, sent: list[httpx.Request]
) -> None:
    body = json.dumps(MANAGED).encode()
    response = await client.post("/embeddings", content=body)

    assert sent[0].content == body
    assert response.status_code == 200
    assert "x-prompt-name" not in response.headers


def test_it_is_exported_and_loaded_on_first_use() -> None:
    assert "HttpxPromptTransport" in prompt_middleware.__all__
    assert prompt_middleware.HttpxPromptTransport is HttpxPromptTransport
