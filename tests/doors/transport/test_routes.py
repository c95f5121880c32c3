"""Which requests the transport takes: POSTs whose path ends with a route; all else untouched."""

from __future__ import annotations

import openai
import pytest
import respx

from prompt_middleware import Settings
from tests.doors.transport.helpers import (
    CHAT_URL,
    UPSTREAM,
    MakeClient,
    completion,
    http_client_of,
    sent,
)
from tests.fakes.memory import MemoryStore


async def test_unmanaged_request_passes_byte_for_byte(
    client: openai.AsyncOpenAI, router: respx.Router, store: MemoryStore
) -> None:
    route = router.post(CHAT_URL).respond(json=completion())
    body = b'{ "model" : "gpt-4o", "messages": [], "seed": 12345678901234567890123, "t": 1e-7 }'
    response = await http_client_of(client).post(CHAT_URL, content=body)
    assert route.calls.last.request.content == body
    assert "x-prompt-middleware-overhead-ms" not in response.headers

    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert sent(route) == {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    assert not any(name.startswith("x-prompt") for name in raw.headers)
    assert store.total_calls == 0


async def test_requests_off_the_chat_routes_are_not_touched(
    client: openai.AsyncOpenAI, router: respx.Router, store: MemoryStore
) -> None:
    models = router.get(f"{UPSTREAM}/models").respond(
        json={
            "object": "list",
            "data": [{"id": "m", "object": "model", "created": 1, "owned_by": "o"}],
        }
    )
    embeddings = router.post(f"{UPSTREAM}/embeddings").respond(
        json={
            "object": "list",
            "model": "mem/e",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}],
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }
    )
    assert [m.id async for m in client.models.list()] == ["m"]
    await client.embeddings.create(
        model="mem/e", input="hi", encoding_format="float", extra_body={"prompt_id": "greeting"}
    )
    assert sent(embeddings)["prompt_id"] == "greeting"
    assert models.called
    assert store.total_calls == 0


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", CHAT_URL),  # a matched path, another method
        ("POST", f"{UPSTREAM}/xchat/completions"),  # a suffix, not a path segment
        ("POST", f"{UPSTREAM}/chat/completions/extra"),
    ],
)
async def test_near_misses_pass_without_being_read(
    client: openai.AsyncOpenAI, router: respx.Router, method: str, url: str
) -> None:
    route = router.route(method=method, url=url).respond(204)
    body = b"not json at all"
    response = await http_client_of(client).request(method, url, content=body)
    assert response.status_code == 204
    assert route.calls.last.request.content == body


async def test_path_suffix_matches_any_base_url(
    make_client: MakeClient, router: respx.Router
) -> None:
    # Azure-style: the SDK posts to {base_url}/chat/completions under a deployment path.
    base = "http://upstream.test/openai/deployments/d1"
    route = router.post(f"{base}/chat/completions", params={"api-version": "2024-10-21"})
    route.respond(json=completion())
    client = make_client(base_url=base)
    await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[],
        extra_body={"prompt_id": "greeting", "prompt_variables": {"name": "Bo"}},
        extra_query={"api-version": "2024-10-21"},
    )
    assert sent(route)["messages"] == [{"role": "user", "content": "Hello Bo."}]


async def test_custom_routes_are_matched_by_suffix(
    make_client: MakeClient, router: respx.Router
) -> None:
    route = router.post("http://upstream.test/llm/chat").respond(json=completion())
    client = make_client(Settings(default_store="mem", routes=("llm/chat",)))
    response = await http_client_of(client).post(
        "http://upstream.test/llm/chat",
        json={"model": "m", "prompt_id": "greeting", "prompt_variables": {"name": "Cy"}},
    )
    assert response.headers["x-prompt-name"] == "greeting"
    assert sent(route)["messages"][0]["content"] == "Hello Cy."
